/// The most recent samples of a stream in a fixed ring, so a window can start before the onset
/// that opened it. Its size is fixed at creation: memory does not grow with the stream.
struct SampleHistory {
    private var ring: [Float]
    /// Samples appended since the stream began (the absolute index of the next sample).
    private(set) var end = 0

    init(capacity: Int) { ring = Array(repeating: 0, count: max(1, capacity)) }

    /// The absolute index of the oldest sample still held.
    var oldest: Int { max(0, end - ring.count) }

    mutating func append(_ samples: UnsafeBufferPointer<Float>) {
        for x in samples {
            ring[end % ring.count] = x
            end += 1
        }
    }

    /// Calls `body` with the samples in [from, min(to, end)) in order, in at most two contiguous
    /// pieces. `from` must be within the last `capacity` samples.
    func forEachPiece(from: Int, to limit: Int, _ body: (UnsafeBufferPointer<Float>) -> Void) {
        precondition(from >= end - ring.count && from <= end, "sample \(from) is no longer held")
        let stop = min(limit, end)
        ring.withUnsafeBufferPointer { all in
            var position = from
            while position < stop {
                let offset = position % ring.count
                let count = min(stop - position, ring.count - offset)
                body(UnsafeBufferPointer(rebasing: all[offset..<(offset + count)]))
                position += count
            }
        }
    }
}
