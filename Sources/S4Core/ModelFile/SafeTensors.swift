import Foundation

/// A parsed safetensors container: an 8-byte little-endian header length, a JSON header, then
/// raw little-endian tensor bytes. Only what s4listen needs: F32 and F64 tensors and the
/// string-valued `__metadata__` map. Every offset is checked before a byte is read.
public struct SafeTensors: Sendable {
    public struct Tensor: Sendable {
        public let dtype: String
        public let shape: [Int]
        let range: Range<Int>
    }

    public let metadata: [String: String]
    public let tensors: [String: Tensor]
    private let bytes: [UInt8]

    public init(bytes: [UInt8]) throws(ModelFileError) {
        guard bytes.count >= 8 else { throw .truncated("the file has \(bytes.count) bytes, fewer than the 8-byte header length") }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw .truncated("the header claims \(headerLength) bytes but only \(bytes.count - 8) follow")
        }
        let dataStart = 8 + Int(headerLength)
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(bytes[8..<dataStart]))
        } catch {
            throw .malformed("the header is not valid JSON")
        }
        guard let header = object as? [String: Any] else { throw .malformed("the header is not a JSON object") }
        var metadata: [String: String] = [:]
        var tensors: [String: Tensor] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                guard let map = value as? [String: String] else { throw .malformed("__metadata__ must map strings to strings") }
                metadata = map
                continue
            }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2
            else { throw .malformed("tensor \(name) lacks dtype, shape or data_offsets") }
            guard let elementSize = Self.elementSize(dtype) else {
                throw .malformed("tensor \(name) has dtype \(dtype); only F32 and F64 are supported")
            }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw .malformed("tensor \(name) has a negative dimension") }
            let begin = offsets[0], end = offsets[1]
            guard begin >= 0, end >= begin, end <= bytes.count - dataStart else {
                throw .truncated("tensor \(name) lies outside the file (bytes \(begin)..<\(end) of \(bytes.count - dataStart))")
            }
            // Checked arithmetic: a hostile header must give an error, not an overflow trap.
            var count = elementSize
            for dimension in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
                guard !overflow else { throw .malformed("tensor \(name) has an impossibly large shape \(shape)") }
                count = product
            }
            count /= elementSize
            guard count * elementSize == end - begin else {
                throw .malformed(
                    "tensor \(name) has \(end - begin) bytes but shape \(shape) of \(dtype) needs \(count * elementSize)")
            }
            tensors[name] = Tensor(dtype: dtype, shape: shape, range: (dataStart + begin)..<(dataStart + end))
        }
        self.metadata = metadata
        self.tensors = tensors
        self.bytes = bytes
    }

    static func elementSize(_ dtype: String) -> Int? {
        switch dtype {
        case "F32": 4
        case "F64": 8
        default: nil
        }
    }

    /// The values of a tensor as Double (F32 widened exactly).
    public func values(_ name: String) throws(ModelFileError) -> [Double] {
        guard let tensor = tensors[name] else { throw .missingTensor(name) }
        let slice = bytes[tensor.range]
        return slice.withUnsafeBytes { raw in
            switch tensor.dtype {
            case "F32":
                (0..<(raw.count / 4)).map {
                    Double(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))))
                }
            default:
                (0..<(raw.count / 8)).map {
                    Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))
                }
            }
        }
    }

    /// The values of a tensor, checked against the expected shape and for NaN or infinity.
    public func values(_ name: String, shape expected: [Int]) throws(ModelFileError) -> [Double] {
        guard let tensor = tensors[name] else { throw .missingTensor(name) }
        guard tensor.shape == expected else { throw .wrongShape(name, found: tensor.shape, expected: expected) }
        let values = try values(name)
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw .nonFinite(name, index: bad)
        }
        return values
    }
}
