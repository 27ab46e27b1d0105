import S4Core

/// Turns a streaming head's posteriors, one vector a frame, into at most one event per word.
///
/// Frames where some command's smoothed posterior is at least `activityFloor` form a group; a
/// group ends after `releaseSeconds` without such a frame. Each group is decided once: when its
/// peak (the highest smoothed posterior of any command) has stood for `peakHoldSeconds`, or when
/// activity ends first. The decision is the peak's command and value, and it is an event when the
/// value reaches the threshold (or always, with `reportEverything`). Nothing here depends on the
/// threshold but that last test, so the events at any threshold are the `--all` events whose
/// score reaches it (what threshold sweeps rely on). Memory is fixed. The same rule, for
/// training's validation, is models/train/s4train/events.py.
struct FrameEventRule {
    let labels: [String]
    let threshold: Float
    let reportEverything: Bool
    let floor: Float
    let holdFrames: Int
    let releaseFrames: Int
    private let commandIndices: [Int]
    private var smoother: PosteriorSmoother

    /// An open group of active frames.
    private struct Group {
        let start: Double
        var peak: (index: Int, value: Float, time: Double, posteriors: [Float])
        var framesSincePeak = 0
        var quietFrames = 0
        var decided = false
    }
    private var group: Group?

    init(labels: [String], frameSeconds: Double, threshold: Float, configuration: DetectorConfiguration) {
        self.labels = labels
        self.threshold = threshold
        reportEverything = configuration.reportEverything
        floor = configuration.activityFloor
        func frames(_ seconds: Double) -> Int { max(1, Int((seconds / frameSeconds).rounded())) }
        smoother = PosteriorSmoother(labels: labels, frames: frames(configuration.smoothingSeconds))
        holdFrames = frames(configuration.peakHoldSeconds)
        releaseFrames = frames(configuration.releaseSeconds)
        commandIndices = smoother.commandIndices
    }

    /// Whether a group is open (a word may be in progress).
    var isActive: Bool { group != nil }

    /// Takes the posteriors of the frame that ends at `time` (seconds of stream); the event it
    /// decided, if any.
    mutating func add(_ posteriors: [Float], time: Double) -> DetectionEvent? {
        let smoothed = smoother.add(posteriors)
        let (best, value) = smoother.bestCommand(smoothed)

        guard var open = group else {
            if let best, value >= floor {
                group = Group(start: time, peak: (best, value, time, smoothed))
            }
            return nil
        }
        var event: DetectionEvent?
        if value >= floor, let best {
            open.quietFrames = 0
            if value > open.peak.value {
                open.peak = (best, value, time, smoothed)
                open.framesSincePeak = 0
            } else {
                open.framesSincePeak += 1
            }
            if !open.decided && open.framesSincePeak >= holdFrames { event = decide(&open, at: time) }
        } else {
            open.quietFrames += 1
            if !open.decided { event = decide(&open, at: time) }
        }
        group = open.quietFrames >= releaseFrames ? nil : open
        return event
    }

    /// The end of the stream: an undecided group is decided now.
    mutating func finish(at time: Double) -> DetectionEvent? {
        guard var open = group else { return nil }
        group = nil
        return open.decided ? nil : decide(&open, at: time)
    }

    private func decide(_ open: inout Group, at time: Double) -> DetectionEvent? {
        open.decided = true
        let peak = open.peak
        guard reportEverything || peak.value >= threshold else { return nil }
        let scores = labels.indices.sorted { peak.posteriors[$0] > peak.posteriors[$1] }.map {
            (label: labels[$0], probability: peak.posteriors[$0])
        }
        return DetectionEvent(
            label: labels[peak.index], score: peak.value, start: open.start, end: peak.time, decidedAt: time, scores: scores)
    }
}
