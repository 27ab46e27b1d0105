/// Bounds on what one client may send and on how long it may hold a place, checked before
/// anything is allocated for it: no client, however it behaves, can exhaust memory, threads or
/// descriptors, nor keep a newcomer out for longer than it takes to notice it is idle.
public struct WyomingLimits: Sendable {
    /// The JSON header line.
    public var headerBytes = 64 * 1024
    /// The extra JSON data block.
    public var dataBytes = 1 << 20
    /// One event's binary payload: 4 MiB is 20 s of 48 kHz 16-bit stereo, while clients send
    /// chunks of tens of milliseconds.
    public var payloadBytes = 4 << 20
    /// An event must arrive whole within this long of its first byte (seconds): a client that
    /// trickles a header a byte at a time is closed, not kept.
    public var eventSeconds: Double = 10
    /// A client that completes no event for this long is closed (seconds); nil: never (a stdio
    /// client has nobody to keep out). Streaming clients send a chunk every few tens of ms.
    public var idleSeconds: Double? = 120
    /// When every place is taken, a newcomer takes the place of the client idle the longest, if
    /// that one has completed no event for at least this long (seconds): clients in the middle of
    /// a stream are never displaced, idle or trickling ones always can be.
    public var displaceableAfterSeconds: Double = 1
    /// The largest `timestamp` a client may give (ms): 2^53 − 1, the largest integer every JSON
    /// reader holds exactly (285,000 years), far from where adding audio time could overflow.
    public static let timestamps: ClosedRange<Int> = 0...((1 << 53) - 1)

    public init() {}
}
