import S4Core

/// A streaming head's posteriors averaged over the last few frames (causal): what the event rule
/// and the classification of a clip read, so a clip scores in `classify` as it would in `listen`.
/// Memory is fixed: a ring of `frames` posteriors.
struct PosteriorSmoother {
    /// The labels that name commands (not starting with `_`).
    let commandIndices: [Int]
    private let width: Int
    private let frames: Int
    private var ring: [Float]
    private var added = 0

    init(labels: [String], frames: Int) {
        commandIndices = labels.indices.filter { Vocabulary.isCommand(labels[$0]) }
        width = labels.count
        self.frames = max(1, frames)
        ring = Array(repeating: 0, count: self.frames * labels.count)
    }

    /// Takes one frame's posteriors; the mean of the last `frames` (fewer at the start).
    mutating func add(_ posteriors: [Float]) -> [Float] {
        let slot = added % frames
        for j in 0..<width { ring[slot &* width &+ j] = posteriors[j] }
        added += 1
        let count = min(added, frames)
        var smoothed = [Float](repeating: 0, count: width)
        for r in 0..<count {
            for j in 0..<width { smoothed[j] += ring[r &* width &+ j] }
        }
        return smoothed.map { $0 / Float(count) }
    }

    /// The likeliest command in `smoothed` and its probability (nil and 0 without commands).
    func bestCommand(_ smoothed: [Float]) -> (index: Int?, value: Float) {
        let best = commandIndices.max { smoothed[$0] < smoothed[$1] }
        return (best, best.map { smoothed[$0] } ?? 0)
    }
}
