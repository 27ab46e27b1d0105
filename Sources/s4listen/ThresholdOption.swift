import ArgumentParser
import S4Detection

/// `--threshold P`, shared by `listen` and `classify` so both refuse the same bad values.
struct ThresholdOption: ParsableArguments {
    @Option(help: "Minimum probability of a command for an event (0 to 1).")
    var threshold: Float = DetectorConfiguration().threshold

    func validate() throws {
        guard threshold.isFinite, (0...1).contains(threshold) else {
            throw ValidationError("--threshold must be between 0 and 1")
        }
    }
}
