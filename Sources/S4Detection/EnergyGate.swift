import Foundation

/// Finds utterances by frame energy against an adaptive noise floor, frame by frame, so its
/// decisions depend only on the samples and never on how they were chunked.
///
/// The floor follows quieter frames at once and rises slowly (`floorRiseDecibelsPerSecond`), so
/// steady background noise is learned within seconds while a word (≤ 1 s) barely moves it.
struct EnergyGate {
    enum Transition: Equatable {
        /// An utterance began at this sample (the first of the loud frames).
        case onset(Int)
        /// It ended at this sample (the first of the quiet frames).
        case offset(Int)
    }

    private let configuration: DetectorConfiguration
    let frameLength: Int
    private let risePerFrame: Double
    private var floor: Double?
    private var run = 0
    private var runStart = 0
    /// Frames since the current utterance began.
    private var activeFrames = 0
    private let maxActiveFrames: Int
    private(set) var isActive = false
    /// The level of the latest frame (dB).
    private(set) var level: Double = -200

    /// While an utterance is active and the latest frames are quiet: where that quiet run began,
    /// the end of the utterance if it stays quiet.
    var quietRunStart: Int? { isActive && run > 0 ? runStart : nil }

    init(configuration: DetectorConfiguration, sampleRate: Double) {
        self.configuration = configuration
        frameLength = max(1, Int((configuration.frameSeconds * sampleRate).rounded()))
        risePerFrame = configuration.floorRiseDecibelsPerSecond * Double(frameLength) / sampleRate
        maxActiveFrames = max(1, Int((configuration.maxUtteranceSeconds * sampleRate / Double(frameLength)).rounded()))
    }

    /// Updates with one frame that starts at sample `start`; returns a transition if one happened.
    mutating func update(frame: UnsafeBufferPointer<Float>, start: Int) -> Transition? {
        var sum: Double = 0
        for x in frame { sum += Double(x) * Double(x) }
        level = 10 * log10(sum / Double(max(frame.count, 1)) + 1e-20)
        // A non-finite sample must not poison the floor for the rest of the stream.
        if !level.isFinite { level = floor ?? -200 }
        let current = floor ?? level
        floor = level < current ? level : current + risePerFrame
        let reference = max(current, configuration.absoluteFloorDecibels)
        if !isActive {
            if level > reference + configuration.onsetDecibels {
                if run == 0 { runStart = start }
                run += 1
                if run >= configuration.onsetFrames {
                    isActive = true
                    activeFrames = 0
                    run = 0
                    return .onset(runStart)
                }
            } else {
                run = 0
            }
        } else {
            activeFrames += 1
            // Loud for longer than any command: the background itself got louder (a tap turned
            // on). Take its level as the new floor and end the utterance, so the gate is ready
            // for the next word instead of waiting for the slow floor to catch up.
            if activeFrames >= maxActiveFrames {
                floor = level
                isActive = false
                run = 0
                return .offset(start)
            }
            if level < reference + configuration.offsetDecibels {
                if run == 0 { runStart = start }
                run += 1
                if run >= configuration.offsetFrames {
                    isActive = false
                    run = 0
                    return .offset(runStart)
                }
            } else {
                run = 0
            }
        }
        return nil
    }
}
