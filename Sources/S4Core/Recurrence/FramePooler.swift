/// Frame pooling for one stream in recurrent mode: rectified stage-0 outputs are summed until a
/// frame's last sample has been seen, then the frame is finished (mean, log, norm) and handed on.
/// A partial frame is carried across chunks, so any chunking gives the same frames.
final class FramePooler {
    let pooling: FramePooling
    let boundaries: FrameBoundaries
    let width: Int
    /// The most frames one chunk can complete.
    let frameCapacity: Int
    /// Frames completed in the current chunk, [frameCapacity × width].
    let frames: UnsafeMutablePointer<Float>
    private let sums: UnsafeMutablePointer<Double>
    private var sampleIndex = 0
    private var frameIndex = 0
    private var frameStart = 0
    private var frameEnd = 0

    init(pooling: FramePooling, boundaries: FrameBoundaries, width: Int, chunkCapacity: Int) {
        precondition(boundaries.samplesPerFrame >= 1, "a frame must hold at least one sample")
        self.pooling = pooling
        self.boundaries = boundaries
        self.width = width
        frameCapacity = chunkCapacity / Int(boundaries.samplesPerFrame.rounded(.down)) + 1
        frames = .allocate(capacity: frameCapacity * width)
        sums = .allocate(capacity: width)
        reset()
    }

    deinit {
        frames.deallocate()
        sums.deallocate()
    }

    func reset() {
        sums.initialize(repeating: 0, count: width)
        sampleIndex = 0
        frameIndex = 0
        frameStart = 0
        frameEnd = boundaries.start(ofFrame: 1)
    }

    /// Takes `rows` rows of stage 0's output; returns how many frames they completed, written to
    /// `frames` from row `firstFrame` on (after those earlier slices of the chunk completed).
    func add(_ output: UnsafePointer<Float>, rows: Int, firstFrame: Int) -> Int {
        var completed = 0
        for t in 0..<rows {
            let row = output + t &* width
            for j in 0..<width { sums[j] += Double(pooling.rectify(row[j])) }
            sampleIndex += 1
            if sampleIndex == frameEnd {
                pooling.finishFrame(
                    sums: sums, count: frameEnd - frameStart, width: width, into: frames + (firstFrame + completed) &* width)
                completed += 1
                sums.update(repeating: 0, count: width)
                frameIndex += 1
                frameStart = frameEnd
                frameEnd = boundaries.start(ofFrame: frameIndex + 1)
            }
        }
        return completed
    }
}
