/// A streaming head's window (`head.window_frames` W): each frame's logits become the mean of
/// the last W frames' (of all so far, while fewer), the clip head's mean over a sliding window.
/// A ring of W rows summed afresh every frame, so no rounding builds up over a long stream; W·K
/// additions a frame are nothing beside the network's. Part of one stream's `RecurrentState`.
final class LogitWindow {
    let frames: Int
    let width: Int
    private let rows: UnsafeMutablePointer<Float>
    /// The latest mean, K values.
    let mean: UnsafeMutablePointer<Float>
    private var next = 0
    private var filled = 0

    init(frames: Int, width: Int) {
        precondition(frames > 0 && width > 0)
        self.frames = frames
        self.width = width
        rows = .allocate(capacity: frames * width)
        mean = .allocate(capacity: width)
        reset()
    }

    deinit {
        rows.deallocate()
        mean.deallocate()
    }

    func reset() {
        rows.initialize(repeating: 0, count: frames * width)
        mean.initialize(repeating: 0, count: width)
        next = 0
        filled = 0
    }

    /// Takes one frame's logits (K values); `mean` then holds the window's.
    func add(_ logits: UnsafePointer<Float>) {
        (rows + next &* width).update(from: logits, count: width)
        next = next &+ 1 == frames ? 0 : next &+ 1
        filled = min(filled &+ 1, frames)
        mean.update(repeating: 0, count: width)
        for r in 0..<filled {
            let row = rows + r &* width
            for j in 0..<width { mean[j] += row[j] }
        }
        let scale = 1 / Float(filled)
        for j in 0..<width { mean[j] *= scale }
    }
}
