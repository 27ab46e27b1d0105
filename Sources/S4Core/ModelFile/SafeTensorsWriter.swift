import Foundation

/// Writes a safetensors container (F32 tensors, string metadata). Used to save models built in
/// Swift (random fixtures for tests and benchmarks); trained models come from the Python exporter.
public struct SafeTensorsWriter {
    private var entries: [(name: String, shape: [Int], values: [Float])] = []
    public var metadata: [String: String] = [:]

    public init() {}

    public mutating func add(_ name: String, shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        entries.append((name, shape, values))
    }

    public func serialized() -> [UInt8] {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for entry in entries {
            header[entry.name] = [
                "dtype": "F32", "shape": entry.shape, "data_offsets": [offset, offset + 4 * entry.values.count],
            ]
            offset += 4 * entry.values.count
        }
        var json = try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad the header with spaces so the data starts 8-byte aligned, as the format recommends.
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + json.count + offset)
        for i in 0..<8 { bytes.append(UInt8((UInt64(json.count) >> (8 * UInt64(i))) & 0xff)) }
        bytes.append(contentsOf: json)
        for entry in entries {
            for value in entry.values {
                let bits = value.bitPattern.littleEndian
                for i in 0..<4 { bytes.append(UInt8((bits >> (8 * UInt32(i))) & 0xff)) }
            }
        }
        return bytes
    }
}
