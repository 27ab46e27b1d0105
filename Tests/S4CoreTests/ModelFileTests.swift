import Foundation
import S4RandomModel
import Testing

@testable import S4Core

/// Reading model files: round trips, and every kind of bad file refused with a message naming it.
@Suite struct ModelFileTests {
    static let model = S4Model.random(RandomModelConfiguration())
    static let bytes = model.safetensors()

    @Test func roundTripKeepsTheModel() throws {
        let loaded = try S4Model(safetensors: Self.bytes)
        #expect(loaded.metadata.labels == Self.model.metadata.labels)
        #expect(loaded.metadata.isUntrained)
        let window = (0..<800).map { Float(sin(Double($0) * 0.1)) }
        let a = RecurrentNetwork(model: Self.model, sampleRate: 16000), b = RecurrentNetwork(model: loaded, sampleRate: 16000)
        let sa = a.makeState(), sb = b.makeState()
        a.process(window, state: sa)
        b.process(window, state: sb)
        #expect(a.logits(sa) == b.logits(sb))
    }

    /// The file with one tensor replaced (or dropped, when `values` is nil) and the metadata edited.
    static func variant(
        replacing name: String? = nil, shape: [Int] = [], values: [Float]? = nil,
        metadata edit: ((inout [String: Any]) -> Void)? = nil
    ) throws -> [UInt8] {
        try variant(of: bytes, replacing: name, shape: shape, values: values, metadata: edit)
    }

    static func variant(
        of bytes: [UInt8], replacing name: String?, shape: [Int], values: [Float]?,
        metadata edit: ((inout [String: Any]) -> Void)?
    ) throws -> [UInt8] {
        let file = try SafeTensors(bytes: bytes)
        var writer = SafeTensorsWriter()
        var object = try JSONSerialization.jsonObject(with: Data(file.metadata["s4"]!.utf8)) as! [String: Any]
        edit?(&object)
        writer.metadata["s4"] = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        for (tensorName, tensor) in file.tensors.sorted(by: { $0.key < $1.key }) {
            if tensorName == name {
                if let values { writer.add(tensorName, shape: shape, values: values) }
            } else {
                writer.add(tensorName, shape: tensor.shape, values: try file.values(tensorName).map(Float.init))
            }
        }
        return writer.serialized()
    }

    /// Edits stage `index`'s entry of the metadata.
    static func editStage(_ index: Int, _ edit: @escaping (inout [String: Any]) -> Void) -> (inout [String: Any]) -> Void {
        { object in
            var stages = object["stages"] as! [[String: Any]]
            edit(&stages[index])
            object["stages"] = stages
        }
    }

    static func refusal(_ bytes: [UInt8]) -> String? {
        do {
            _ = try S4Model(safetensors: bytes)
            return nil
        } catch {
            return error.description
        }
    }

    @Test func truncatedFilesAreRefused() {
        for length in [0, 5, 8, 40, Self.bytes.count / 2, Self.bytes.count - 1] {
            let message = Self.refusal(Array(Self.bytes.prefix(length)))
            #expect(
                message?.contains("truncated") == true || message?.contains("malformed") == true,
                "\(length) bytes: \(message ?? "accepted")")
        }
    }

    @Test func garbageIsRefused() {
        let message = Self.refusal(Array("RIFF....WAVEfmt this is not a model".utf8))
        #expect(message?.hasPrefix("model file is") == true, "\(message ?? "accepted")")
    }

    /// Hostile headers: offsets and shapes whose arithmetic would overflow are refused, not trapped.
    @Test func hostileHeadersAreRefused() {
        func file(_ header: String) -> [UInt8] {
            let json = Array(header.utf8)
            return (0..<8).map { UInt8((UInt64(json.count) >> (8 * UInt64($0))) & 0xff) } + json + [0, 0, 0, 0]
        }
        let offsets = Self.refusal(file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,9223372036854775807]}}"#))
        #expect(offsets?.contains("lies outside the file") == true, "\(offsets ?? "accepted")")
        let shape = Self.refusal(file(#"{"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}}"#))
        #expect(shape?.contains("impossibly large shape") == true, "\(shape ?? "accepted")")
    }

    @Test func absurdSizesInMetadataAreRefused() throws {
        #expect(Self.refusal(try Self.variant { $0["clip_seconds"] = 1e300 })?.contains("clip_seconds") == true)
        #expect(
            Self.refusal(try Self.variant { $0["head"] = ["norm": "layer", "norm_eps": 0, "pooling": "mean"] })?.contains(
                "head.norm_eps must be positive") == true)
        #expect(Self.refusal(try Self.variant { $0["sample_rate"] = 5 })?.contains("sample_rate") == true)
    }

    @Test func missingTensorIsNamed() throws {
        let message = Self.refusal(try Self.variant(replacing: "stages.0.layers.1.ssm.c_im"))
        #expect(message == "model file lacks tensor stages.0.layers.1.ssm.c_im")
    }

    @Test func wrongShapeIsNamed() throws {
        let message = Self.refusal(
            try Self.variant(replacing: "stages.0.layers.0.ssm.b_re", shape: [4, 3], values: Array(repeating: 0, count: 12)))
        #expect(message == "tensor stages.0.layers.0.ssm.b_re has shape [4, 3], expected [4, 4]")
    }

    @Test func nanIsNamed() throws {
        var values = Array(repeating: Float(0.1), count: 8)
        values[5] = .nan
        let message = Self.refusal(try Self.variant(replacing: "stages.0.layers.0.out.bias", shape: [8], values: values))
        #expect(message == "tensor stages.0.layers.0.out.bias contains NaN or infinity (element 5)")
    }

    @Test func unstableLambdaIsNamed() throws {
        var values = Array(repeating: Float(-0.5), count: 16)
        values[6] = 0
        let message = Self.refusal(try Self.variant(replacing: "stages.0.layers.1.ssm.lambda_re", shape: [4, 4], values: values))
        #expect(
            message?.hasPrefix("tensor stages.0.layers.1.ssm.lambda_re has Re Λ = 0.0 ≥ 0 at element 6") == true,
            "\(message ?? "accepted")")
    }

    @Test func oddStateSizeIsRefused() throws {
        let message = Self.refusal(try Self.variant(metadata: Self.editStage(0) { $0["d_state"] = 7 }))
        #expect(message?.contains("d_state must be even") == true, "\(message ?? "accepted")")
    }

    @Test func missingMetadataKeyIsNamed() throws {
        let message = Self.refusal(try Self.variant { $0.removeValue(forKey: "input_std") })
        #expect(message == "model metadata lacks input_std")
    }

    @Test func badMetadataValuesAreRefused() throws {
        #expect(
            Self.refusal(try Self.variant(metadata: Self.editStage(0) { $0["kernel"] = "fourier" }))?
                .contains("stages[0].kernel \"fourier\" is not supported") == true)
        #expect(Self.refusal(try Self.variant { $0["input_std"] = 0 })?.contains("input_std must be positive") == true)
        #expect(
            Self.refusal(try Self.variant(metadata: Self.editStage(0) { $0["discretization"] = "zoh" }))?.contains("bilinear")
                == true)
        #expect(Self.refusal(try Self.variant { $0["format"] = 3 })?.contains("format 3") == true)
    }

    @Test func labelCountMustMatchTheDecoder() throws {
        let message = Self.refusal(try Self.variant { $0["labels"] = ["a", "b"] })
        #expect(message == "tensor decoder.weight has shape [12, 4], expected [2, 4]")
    }
}
