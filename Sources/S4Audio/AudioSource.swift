import S4Core

/// A stream of mono samples the daemon feeds to the model.
///
/// Samples are Float in [−1, 1] at the source's own `sampleRate`: sources never resample, because the
/// model adapts its discretisation step to the rate instead. Reads are incremental and use a fixed
/// amount of memory, so a source can run for days.
public protocol AudioSource: AnyObject, CustomStringConvertible {
    /// Frames per second of the delivered samples.
    var sampleRate: Int { get }

    /// Fills the front of `output` with the next mono samples and returns how many it wrote.
    ///
    /// Returns 0 only at the end of the stream (or for an empty `output`); a live source blocks until
    /// at least one frame is available. Errors name the source.
    func read(into output: UnsafeMutableBufferPointer<Float>) throws(AudioSourceError) -> Int

    /// Times samples were lost because the reader fell behind (a live device's overruns).
    var overrunCount: Int { get }
}

extension AudioSource {
    /// Files and pipes wait for their reader: nothing is ever lost.
    public var overrunCount: Int { 0 }
}
