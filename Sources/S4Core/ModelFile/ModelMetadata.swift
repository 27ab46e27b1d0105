import Foundation

/// The `s4` metadata object of a model file (docs/model-format.md): format 2, a list of stages,
/// or format 1, read as one stage.
public struct ModelMetadata: Sendable, Equatable {
    public enum Kernel: String, Sendable { case dplr, diag }
    public enum Norm: String, Sendable { case layer, batch }
    public enum Output: String, Sendable { case glu, linear }
    /// What the head pools (docs/model-format.md): a clip head takes the mean over a window run
    /// from a zero state; a streaming head gives logits at every frame of one state never reset.
    public enum HeadPooling: String, Sendable { case mean, frame }

    /// One stage's shape. Blocks have a norm and an output map; a filter bank has neither.
    public struct Stage: Sendable, Equatable {
        public var clock: StageClock
        public var width: Int
        public var layerCount: Int
        public var stateSize: Int
        public var isBank: Bool
        public var kernel: Kernel
        public var discretization: DiscretizationMethod
        /// Rows of P (dplr only; 0 for diag).
        public var rank: Int
        public var norm: Norm
        public var normEpsilon: Double
        public var output: Output

        public init(
            clock: StageClock, width: Int, layerCount: Int, stateSize: Int, isBank: Bool = false,
            kernel: Kernel, discretization: DiscretizationMethod, rank: Int = 0, norm: Norm = .layer,
            normEpsilon: Double = 1e-5, output: Output = .glu
        ) {
            self.clock = clock; self.width = width; self.layerCount = layerCount; self.stateSize = stateSize
            self.isBank = isBank; self.kernel = kernel; self.discretization = discretization
            self.rank = kernel == .dplr ? rank : 0; self.norm = norm; self.normEpsilon = normEpsilon; self.output = output
        }
    }

    /// The boundary between the input-rate stage and the frame stages.
    public struct Pooling: Sendable, Equatable {
        public enum Rectifier: String, Sendable { case square, abs }
        /// τ: a frame's length in seconds of input, whatever the sampling rate.
        public var frameSeconds: Double
        public var rectifier: Rectifier
        public var logFloor: Double
        /// ε of the pooling norm (a BatchNorm); PyTorch's default when the file does not say.
        public var normEpsilon: Double

        public init(frameSeconds: Double, rectifier: Rectifier = .square, logFloor: Double = 1e-8, normEpsilon: Double = 1e-5) {
            self.frameSeconds = frameSeconds; self.rectifier = rectifier; self.logFloor = logFloor; self.normEpsilon = normEpsilon
        }
    }

    /// 1 or 2: the file's layout (tensor names follow it).
    public var format: Int
    public var labels: [String]
    /// f_train: stage 0's Δ in the file is the step at this rate.
    public var sampleRate: Int
    public var inputMean: Double
    public var inputStd: Double
    public var clipSeconds: Double
    public var stages: [Stage]
    /// Present exactly when there is more than one stage.
    public var pooling: Pooling?
    public var headNorm: Norm
    public var headNormEpsilon: Double
    public var headPooling: HeadPooling
    /// A streaming head's logits are the mean of the last this many frames' own (1: each frame's;
    /// `head.window_frames`, 1 when absent): the clip head's mean over a sliding window.
    public var headWindowFrames: Int
    /// Where `headWindowFrames` may lie.
    public static let headWindows: ClosedRange<Int> = 1...1000
    /// Set (`"untrained": true`) on models made by `S4Model.random`: their labels mean nothing.
    public var isUntrained: Bool
    /// The detection threshold chosen for this model on validation speakers (`make
    /// threshold-sweep`), if the file names one: each model's scores are calibrated its own way.
    public var detectionThreshold: Float?
    /// Where a detection threshold may lie (it is a probability): for a file's, one given in
    /// code and `--threshold` alike.
    public static let detectionThresholds: ClosedRange<Double> = 0...1
    /// The whole JSON object as read, with `trained_on` and `metrics`, for `s4listen info`.
    public var json: String

    /// Format-2 metadata; `extra` keys (`trained_on`, `metrics`, `untrained`,
    /// `detection_threshold`) are kept in the JSON. A `detection_threshold` outside 0...1 is a
    /// programming error (a precondition): files are checked when read instead.
    public init(
        labels: [String], sampleRate: Int, inputMean: Double, inputStd: Double, clipSeconds: Double,
        stages: [Stage], pooling: Pooling?, headNorm: Norm = .layer, headNormEpsilon: Double = 1e-5,
        headPooling: HeadPooling = .mean, headWindowFrames: Int = 1, extra: [String: Any] = [:]
    ) {
        precondition(
            Self.headWindows.contains(headWindowFrames) && (headPooling == .frame || headWindowFrames == 1),
            "a head window of \(headWindowFrames) frames (1...1000, and 1 for a clip head)")
        format = 2
        self.labels = labels; self.sampleRate = sampleRate; self.inputMean = inputMean; self.inputStd = inputStd
        self.clipSeconds = clipSeconds; self.stages = stages; self.pooling = pooling
        self.headNorm = headNorm; self.headNormEpsilon = headNormEpsilon; self.headPooling = headPooling
        self.headWindowFrames = headWindowFrames
        isUntrained = extra["untrained"] as? Bool ?? false
        // Checked as init(json:) checks a file's, so that no file is written that could not be read back.
        let threshold = extra["detection_threshold"].map { ($0 as? NSNumber)?.doubleValue ?? .nan }
        precondition(
            threshold.map { Self.detectionThresholds.contains($0) } ?? true,
            "detection_threshold must be a number in 0...1, got \(extra["detection_threshold"] ?? "none")")
        detectionThreshold = threshold.map(Float.init)
        var object: [String: Any] = extra
        object["format"] = 2
        object["labels"] = labels
        object["sample_rate"] = sampleRate
        object["input_mean"] = inputMean
        object["input_std"] = inputStd
        object["clip_seconds"] = clipSeconds
        object["stages"] = stages.map { stage -> [String: Any] in
            var entry: [String: Any] = [
                "clock": stage.clock.rawValue, "d_model": stage.width, "n_layers": stage.layerCount,
                "d_state": stage.stateSize, "bank": stage.isBank, "kernel": stage.kernel.rawValue,
                "discretization": stage.discretization.rawValue,
            ]
            if stage.kernel == .dplr { entry["rank"] = stage.rank }
            if !stage.isBank {
                entry["norm"] = stage.norm.rawValue
                entry["norm_eps"] = stage.normEpsilon
                entry["activation"] = "gelu"
                entry["output"] = stage.output.rawValue
            }
            return entry
        }
        if let pooling {
            object["pooling"] = [
                "frame_seconds": pooling.frameSeconds, "rectifier": pooling.rectifier.rawValue,
                "log_floor": pooling.logFloor, "norm_eps": pooling.normEpsilon,
            ]
        }
        var head: [String: Any] = ["norm": headNorm.rawValue, "norm_eps": headNormEpsilon, "pooling": headPooling.rawValue]
        if headPooling == .frame { head["window_frames"] = headWindowFrames }
        object["head"] = head
        json = String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    /// The same network described in format 2, with the provenance keys kept (a format-1 file
    /// written back out becomes a format-2 file of one stage).
    public var formatTwo: ModelMetadata {
        if format == 2 { return self }
        let object = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] ?? [:]
        return ModelMetadata(
            labels: labels, sampleRate: sampleRate, inputMean: inputMean, inputStd: inputStd,
            clipSeconds: clipSeconds, stages: stages, pooling: pooling, headNorm: headNorm,
            headNormEpsilon: headNormEpsilon, headPooling: headPooling, headWindowFrames: headWindowFrames,
            extra: object.filter { ["trained_on", "metrics", "untrained", "detection_threshold"].contains($0.key) })
    }

    /// Parses and checks the `s4` JSON object.
    public init(json text: String) throws(ModelFileError) {
        guard let data = text.data(using: .utf8),
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        else { throw .invalidMetadata("the s4 entry is not a JSON object") }
        let top = MetadataObject(object, path: "")
        format = try top.integer("format")
        guard format == 1 || format == 2 else { throw .invalidMetadata("format \(format) is not supported (expected 1 or 2)") }
        let labels = try top.field("labels", as: [String].self)
        guard !labels.isEmpty else { throw .invalidMetadata("labels is empty") }
        if let twice = labels.indices.first(where: { labels[..<$0].contains(labels[$0]) }) {
            throw .invalidMetadata("labels names \"\(labels[twice])\" twice")
        }
        self.labels = labels
        sampleRate = try top.integer("sample_rate")
        guard supportedSampleRates.contains(sampleRate) else {
            throw .invalidMetadata(
                "sample_rate must be between \(supportedSampleRates.lowerBound) and \(supportedSampleRates.upperBound) Hz, got \(sampleRate)"
            )
        }
        inputMean = try top.number("input_mean")
        inputStd = try top.number("input_std")
        guard inputStd > 0 else { throw .invalidMetadata("input_std must be positive, got \(inputStd)") }
        clipSeconds = try top.number("clip_seconds")
        guard clipSeconds > 0, clipSeconds <= 60, clipSeconds * Double(sampleRate) >= 1 else {
            throw .invalidMetadata("clip_seconds must be between one sample and 60 s, got \(clipSeconds)")
        }
        isUntrained = object["untrained"] as? Bool ?? false
        if object["detection_threshold"] == nil {
            detectionThreshold = nil
        } else {
            let threshold = try top.number("detection_threshold")
            guard Self.detectionThresholds.contains(threshold) else {
                throw .invalidMetadata("detection_threshold must be between 0 and 1, got \(threshold)")
            }
            detectionThreshold = Float(threshold)
        }
        // Re-serialised on one line: `info` prints it inside a JSON line, whatever whitespace the file had.
        json =
            (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
            .map { String(decoding: $0, as: UTF8.self) } ?? text
        if format == 1 {
            let stage = try Self.stage(top, clock: .input)
            let pooling = try top.field("pooling", as: String.self)
            guard pooling == "mean" else { throw .invalidMetadata("pooling \"\(pooling)\" is not supported") }
            stages = [stage]
            self.pooling = nil
            headNorm = stage.norm
            headNormEpsilon = stage.normEpsilon
            headPooling = .mean
            headWindowFrames = 1
            return
        }
        let entries = try top.field("stages", as: [[String: Any]].self)
        guard !entries.isEmpty, entries.count <= 16 else {
            throw .invalidMetadata("stages must list 1 to 16 stages, got \(entries.count)")
        }
        stages = []
        for (s, entry) in entries.enumerated() {
            let stage = MetadataObject(entry, path: "stages[\(s)].")
            let clock = try stage.choice("clock", StageClock.self)
            let required: StageClock = s == 0 ? .input : .frames
            guard clock == required else {
                throw .invalidMetadata(
                    "stages[\(s)].clock is \"\(clock.rawValue)\" but stage \(s) must run at the \(required == .input ? "input rate (\"input\")" : "frame clock (\"frames\")")"
                )
            }
            stages.append(try Self.stage(stage, clock: clock))
        }
        if stages.count > 1 {
            let pooling = MetadataObject(try top.field("pooling", as: [String: Any].self), path: "pooling.")
            let frameSeconds = try pooling.number("frame_seconds")
            guard (0.001...1).contains(frameSeconds) else {
                throw .invalidMetadata("pooling.frame_seconds must be between 0.001 and 1 s, got \(frameSeconds)")
            }
            let floor = try pooling.number("log_floor")
            guard floor > 0 else { throw .invalidMetadata("pooling.log_floor must be positive, got \(floor)") }
            let epsilon = pooling.object["norm_eps"] == nil ? 1e-5 : try pooling.number("norm_eps")
            guard epsilon > 0 else { throw .invalidMetadata("pooling.norm_eps must be positive, got \(epsilon)") }
            self.pooling = Pooling(
                frameSeconds: frameSeconds, rectifier: try pooling.choice("rectifier", Pooling.Rectifier.self),
                logFloor: floor, normEpsilon: epsilon)
            guard clipSeconds >= frameSeconds else {
                throw .invalidMetadata("clip_seconds \(clipSeconds) is shorter than one frame (\(frameSeconds) s)")
            }
        } else {
            pooling = nil
        }
        let head = MetadataObject(try top.field("head", as: [String: Any].self), path: "head.")
        headNorm = try head.choice("norm", Norm.self)
        headNormEpsilon = try head.number("norm_eps")
        guard headNormEpsilon > 0 else { throw .invalidMetadata("head.norm_eps must be positive, got \(headNormEpsilon)") }
        headPooling = try head.choice("pooling", HeadPooling.self)
        headWindowFrames = head.object["window_frames"] == nil ? 1 : try head.integer("window_frames")
        guard Self.headWindows.contains(headWindowFrames) else {
            throw .invalidMetadata("head.window_frames must be 1 to 1000, got \(headWindowFrames)")
        }
        guard headPooling == .frame || headWindowFrames == 1 else {
            throw .invalidMetadata(
                "head.window_frames is for a streaming head (head.pooling \"frame\"), not \"\(headPooling.rawValue)\"")
        }
        if headPooling == .frame {
            guard stages.count > 1 else {
                throw .invalidMetadata("head.pooling \"frame\" needs frame stages (a network of two or more)")
            }
            guard labels.contains(where: { !Vocabulary.isCommand($0) }) else {
                throw .invalidMetadata("a streaming head (head.pooling \"frame\") needs a label for no command (starting with _)")
            }
        }
    }

    /// One stage's keys (at the top level in format 1).
    private static func stage(_ entry: MetadataObject, clock: StageClock) throws(ModelFileError) -> Stage {
        let p = entry.path
        let width = try entry.integer("d_model"), layerCount = try entry.integer("n_layers"),
            stateSize = try entry.integer("d_state")
        guard (1...4096).contains(width) else { throw .invalidMetadata("\(p)d_model must be 1 to 4096, got \(width)") }
        guard (0...256).contains(layerCount) else { throw .invalidMetadata("\(p)n_layers must be 0 to 256, got \(layerCount)") }
        guard stateSize > 0, stateSize <= 4096, stateSize % 2 == 0 else {
            throw .invalidMetadata("\(p)d_state must be even and positive (N/2 conjugate pairs are stored), got \(stateSize)")
        }
        let isBank = entry.object["bank"] as? Bool ?? false
        if isBank, layerCount != 1 { throw .invalidMetadata("\(p)n_layers must be 1 for a filter bank, got \(layerCount)") }
        let kernel = try entry.choice("kernel", Kernel.self)
        let discretization = try entry.choice("discretization", DiscretizationMethod.self)
        var rank = 0
        if kernel == .dplr {
            guard discretization == .bilinear else {
                throw .invalidMetadata("\(p)a dplr kernel must use bilinear discretization")
            }
            rank = try entry.integer("rank")
            guard rank >= 1, rank <= stateSize / 2 else {
                throw .invalidMetadata("\(p)rank must be between 1 and d_state/2, got \(rank)")
            }
        }
        var stage = Stage(
            clock: clock, width: width, layerCount: layerCount, stateSize: stateSize, isBank: isBank,
            kernel: kernel, discretization: discretization, rank: rank)
        if !isBank {
            stage.norm = try entry.choice("norm", Norm.self)
            stage.normEpsilon = try entry.number("norm_eps")
            guard stage.normEpsilon > 0 else { throw .invalidMetadata("\(p)norm_eps must be positive, got \(stage.normEpsilon)") }
            let activation = try entry.field("activation", as: String.self)
            guard activation == "gelu" else { throw .invalidMetadata("\(p)activation \"\(activation)\" is not supported") }
            stage.output = try entry.choice("output", Output.self)
        }
        return stage
    }
}
