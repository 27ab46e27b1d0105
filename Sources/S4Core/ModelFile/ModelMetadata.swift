import Foundation

/// The `s4` metadata object of a model file (docs/model-format.md).
public struct ModelMetadata: Sendable, Equatable {
    public enum Kernel: String, Sendable { case dplr, diag }
    public enum Norm: String, Sendable { case layer, batch }
    public enum Output: String, Sendable { case glu, linear }

    public var labels: [String]
    /// f_train: Δ in the file is the step at this rate.
    public var sampleRate: Int
    public var inputMean: Double
    public var inputStd: Double
    public var clipSeconds: Double
    public var dModel: Int
    public var layerCount: Int
    public var stateSize: Int
    public var kernel: Kernel
    public var discretization: DiscretizationMethod
    public var rank: Int
    public var norm: Norm
    public var normEpsilon: Double
    public var output: Output
    /// Set (`"untrained": true`) on models made by `S4Model.random`: their labels mean nothing.
    public var isUntrained: Bool
    /// The whole JSON object as read, with `trained_on` and `metrics`, for `s4listen info`.
    public var json: String

    public init(labels: [String], sampleRate: Int, inputMean: Double, inputStd: Double, clipSeconds: Double,
                dModel: Int, layerCount: Int, stateSize: Int, kernel: Kernel, discretization: DiscretizationMethod,
                rank: Int, norm: Norm, normEpsilon: Double, output: Output, extra: [String: Any] = [:]) {
        self.labels = labels; self.sampleRate = sampleRate; self.inputMean = inputMean; self.inputStd = inputStd
        self.clipSeconds = clipSeconds; self.dModel = dModel; self.layerCount = layerCount; self.stateSize = stateSize
        self.kernel = kernel; self.discretization = discretization; self.rank = rank; self.norm = norm
        self.normEpsilon = normEpsilon; self.output = output
        isUntrained = extra["untrained"] as? Bool ?? false
        var object: [String: Any] = extra
        object["format"] = 1
        object["labels"] = labels
        object["sample_rate"] = sampleRate
        object["input_mean"] = inputMean
        object["input_std"] = inputStd
        object["clip_seconds"] = clipSeconds
        object["d_model"] = dModel
        object["n_layers"] = layerCount
        object["d_state"] = stateSize
        object["kernel"] = kernel.rawValue
        object["discretization"] = discretization.rawValue
        if kernel == .dplr { object["rank"] = rank }
        object["norm"] = norm.rawValue
        object["norm_eps"] = normEpsilon
        object["activation"] = "gelu"
        object["output"] = output.rawValue
        object["pooling"] = "mean"
        json = String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    /// Parses and checks the `s4` JSON object.
    public init(json text: String) throws(ModelFileError) {
        guard let data = text.data(using: .utf8),
              let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        else { throw .invalidMetadata("the s4 entry is not a JSON object") }
        func field<T>(_ key: String, as _: T.Type) throws(ModelFileError) -> T {
            guard let value = object[key] else { throw .missingMetadata(key) }
            guard let typed = value as? T else { throw .invalidMetadata("\(key) has the wrong type") }
            return typed
        }
        func number(_ key: String) throws(ModelFileError) -> Double {
            let value = try field(key, as: NSNumber.self).doubleValue
            guard value.isFinite else { throw .invalidMetadata("\(key) is not finite") }
            return value
        }
        func integer(_ key: String) throws(ModelFileError) -> Int {
            let value = try number(key)
            guard value == value.rounded(), abs(value) < 1e9 else { throw .invalidMetadata("\(key) must be an integer") }
            return Int(value)
        }
        func choice<E: RawRepresentable>(_ key: String, _: E.Type) throws(ModelFileError) -> E where E.RawValue == String {
            let raw = try field(key, as: String.self)
            guard let value = E(rawValue: raw) else { throw .invalidMetadata("\(key) \"\(raw)\" is not supported") }
            return value
        }

        let format = try integer("format")
        guard format == 1 else { throw .invalidMetadata("format \(format) is not supported (expected 1)") }
        labels = try field("labels", as: [String].self)
        guard !labels.isEmpty else { throw .invalidMetadata("labels is empty") }
        sampleRate = try integer("sample_rate")
        guard (1000...384_000).contains(sampleRate) else {
            throw .invalidMetadata("sample_rate must be between 1000 and 384000 Hz, got \(sampleRate)")
        }
        inputMean = try number("input_mean")
        inputStd = try number("input_std")
        guard inputStd > 0 else { throw .invalidMetadata("input_std must be positive, got \(inputStd)") }
        clipSeconds = try number("clip_seconds")
        guard clipSeconds > 0, clipSeconds <= 60, clipSeconds * Double(sampleRate) >= 1 else {
            throw .invalidMetadata("clip_seconds must be between one sample and 60 s, got \(clipSeconds)")
        }
        dModel = try integer("d_model")
        layerCount = try integer("n_layers")
        stateSize = try integer("d_state")
        guard (1...4096).contains(dModel) else { throw .invalidMetadata("d_model must be 1 to 4096, got \(dModel)") }
        guard (0...256).contains(layerCount) else { throw .invalidMetadata("n_layers must be 0 to 256, got \(layerCount)") }
        guard stateSize > 0, stateSize <= 4096, stateSize % 2 == 0 else {
            throw .invalidMetadata("d_state must be even and positive (N/2 conjugate pairs are stored), got \(stateSize)")
        }
        kernel = try choice("kernel", Kernel.self)
        discretization = try choice("discretization", DiscretizationMethod.self)
        if kernel == .dplr {
            guard discretization == .bilinear else { throw .invalidMetadata("a dplr kernel must use bilinear discretization") }
            rank = try integer("rank")
            guard rank >= 1, rank <= stateSize / 2 else { throw .invalidMetadata("rank must be between 1 and d_state/2, got \(rank)") }
        } else {
            rank = 0
        }
        norm = try choice("norm", Norm.self)
        normEpsilon = try number("norm_eps")
        guard normEpsilon > 0 else { throw .invalidMetadata("norm_eps must be positive, got \(normEpsilon)") }
        let activation = try field("activation", as: String.self)
        guard activation == "gelu" else { throw .invalidMetadata("activation \"\(activation)\" is not supported") }
        output = try choice("output", Output.self)
        let pooling = try field("pooling", as: String.self)
        guard pooling == "mean" else { throw .invalidMetadata("pooling \"\(pooling)\" is not supported") }
        isUntrained = object["untrained"] as? Bool ?? false
        json = text
    }
}
