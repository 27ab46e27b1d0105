import S4Core

/// The knobs of the detector, in audio time (never wall-clock time), with defaults for Speech
/// Commands-style one-second utterances.
public struct DetectorConfiguration: Sendable {
    /// Minimum probability of the winning command for an event; `nil`: the model's own
    /// (`threshold(for:)`). Lower it to miss fewer words at the cost of more errors.
    public var threshold: Float?
    /// For a model whose file names no `detection_threshold`: what the rule chose for the model
    /// bundled when the key was introduced (models/README.md).
    public static let defaultThreshold: Float = 0.83
    /// Also report `_unknown_`, `_silence_` and commands under the threshold (as events whose
    /// label is what the model said).
    public var reportEverything = false
    /// Analysis frame of the energy gate, seconds.
    public var frameSeconds = 0.010
    /// A frame is loud when its energy exceeds the noise floor by this much (dB)…
    public var onsetDecibels: Double = 9
    /// …and quiet again below floor + this (dB).
    public var offsetDecibels: Double = 8
    /// Loud frames in a row that start an utterance.
    public var onsetFrames = 5
    /// Quiet frames in a row that end it.
    public var offsetFrames = 20
    /// Frames never quieter than this (dBFS) count as silence whatever the floor (keeps digital
    /// silence from making every click an utterance).
    public var absoluteFloorDecibels: Double = -70
    /// An utterance still loud after this long is taken as a rise of the background: the floor
    /// jumps to the current level and the gate re-arms (seconds).
    public var maxUtteranceSeconds = 1.5
    /// How fast the noise floor may rise, dB per second (it falls at once to quieter frames).
    public var floorRiseDecibelsPerSecond: Double = 3
    /// Each utterance is classified in windows that start this long before its onset (seconds);
    /// their probabilities are averaged. Training clips place words 0.1–0.5 s into the window.
    public var windowLeads: [Double] = [0.15, 0.35]
    /// An utterance whose loudest frame comes at least this long after its onset, and whose
    /// windows are not sure of a command (`secondLookBelow`), is classified once more with
    /// windows placed by that frame: a sound just before the word (a breath, a door, the louder
    /// room of another recording) opened the utterance early and its windows cut the word off.
    /// Of the two looks, the one surer of a command decides (the second on a tie); an unsure
    /// first look's decision waits for it. Seconds; `nil` turns the second look off.
    public var secondLookAfter: Double? = 0.3
    /// A first look whose likeliest command is under this probability may get a second look. A
    /// fixed value rather than the threshold, so that what `--all` reports, filtered by a
    /// threshold, is what that threshold reports (`make threshold-sweep` relies on it).
    public var secondLookBelow: Float = 0.95
    /// Where the second look puts the word's start: this long before the loudest frame (a
    /// word's vowel peaks about this far in), seconds. Its windows then start `windowLeads`
    /// before that.
    public var peakLag: Double = 0.2

    // A streaming head's posteriors (`FrameEventRule`).

    /// Posteriors are averaged over this long before the rule reads them (seconds).
    public var smoothingSeconds = 0.05
    /// A word's activity: some command's smoothed posterior at or above this. It opens a group of
    /// frames that gives at most one event, whatever the threshold.
    public var activityFloor: Float = 0.2
    /// A group is decided once its peak has stood this long (seconds), or when activity ends.
    public var peakHoldSeconds = 0.1
    /// A group closes after this long without activity (seconds): the refractory time, during
    /// which a word's tail cannot give a second event.
    public var releaseSeconds = 0.3

    public init() {}

    /// The threshold in force for `model`: the one given, else the model's `detection_threshold`
    /// (chosen for it on validation speakers by a rule: the lowest threshold at which their scenes
    /// meet the targets for wrong labels and false alarms, `make threshold-sweep`), else
    /// `defaultThreshold`. So a retrained model, also one swapped in by a reload, brings its own.
    public func threshold(for model: S4Model) -> Float {
        threshold ?? model.metadata.detectionThreshold ?? Self.defaultThreshold
    }
}
