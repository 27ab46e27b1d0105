import ArgumentParser
import S4Core
import S4Detection

/// `--threshold P`, shared by `listen`, `classify` and `serve` so all refuse the same bad values.
struct ThresholdOption: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Minimum probability of a command for an event (0 to 1).",
            discussion: "Default: the model's own (detection_threshold in its file, chosen on validation speakers; "
                + "a reloaded model brings its own), else \(DetectorConfiguration.defaultThreshold)."))
    var threshold: Float?

    func validate() throws {
        if let threshold, !threshold.isFinite || !ModelMetadata.detectionThresholds.contains(Double(threshold)) {
            throw ValidationError("--threshold must be between 0 and 1")
        }
    }
}
