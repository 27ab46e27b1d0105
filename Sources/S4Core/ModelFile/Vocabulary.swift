/// The labels of the task the bundled model learns (Speech Commands), and what makes a label a
/// command. The Python side's copy for training and evaluation is `models/train/s4train/vocabulary.py`.
public enum Vocabulary {
    /// The ten command words.
    public static let commands = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
    /// A model's labels in the order of its logits: the commands, then the two that are not.
    public static let labels = commands + ["_unknown_", "_silence_"]

    /// A label names a command unless it starts with `_` (`_unknown_`, `_silence_`): those are
    /// never reported as detections, never offered as wake words, never chosen over a command.
    public static func isCommand(_ label: String) -> Bool { !label.hasPrefix("_") }
}
