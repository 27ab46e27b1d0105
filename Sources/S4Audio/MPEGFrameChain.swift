#if canImport(Glibc)
import Glibc
#endif

/// Whether bytes that start like MP3 (an ID3v2 tag, or the 11-bit MPEG audio frame sync) go on
/// as MPEG audio: a chain of frame headers, each where the one before says it ends. libsndfile
/// hands any such file to libmpg123, which prints its own notes ("Illegal Audio-MPEG-Header",
/// "Duh…") on standard error when the rest is not MP3; checking the chain first lets s4listen say
/// what the file is instead, and keeps those lines out of its output.
enum MPEGFrameChain {
    /// Frames that must follow each other for the data to count as MPEG audio.
    static let framesRequired = 3

    /// Whether `head` (the file's first bytes) starts like MP3.
    static func startsLikeMP3(_ head: [UInt8]) -> Bool {
        head.starts(with: Array("ID3".utf8)) || (head.count >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0)
    }

    /// How far past its ID3v2 tags the first frame may start (junk, padding): as far as
    /// libmpg123 looks for it.
    static let searchBytes = 64 * 1024
    /// A free-format frame (bitrate index 0) states no length: the next header of its kind must
    /// come within this many bytes.
    static let freeFormatBytes = 4096

    /// Whether the file open on `fd` holds `framesRequired` chained MPEG audio frames, starting
    /// within `searchBytes` after any ID3v2 tags.
    static func isChained(fd: Int32) -> Bool {
        var offset = 0
        var tag = [UInt8](repeating: 0, count: 10)
        // Tags one after another: each one's size is four bytes of seven bits ("synchsafe"),
        // then a footer if flagged.
        while pread(fd, &tag, 10, off_t(offset)) == 10, tag.starts(with: Array("ID3".utf8)) {
            let size = tag[6..<10].reduce(0) { $0 << 7 | Int($1 & 0x7F) }
            offset += 10 + size + (tag[5] & 0x10 != 0 ? 10 : 0)
        }
        var bytes = [UInt8](repeating: 0, count: searchBytes + framesRequired * freeFormatBytes)
        let count = max(0, pread(fd, &bytes, bytes.count, off_t(offset)))
        bytes.removeSubrange(count...)
        return (0..<min(searchBytes, bytes.count)).contains { startsChain(bytes, at: $0) }
    }

    /// Whether `framesRequired` frames of one kind follow each other from `start`.
    static func startsChain(_ bytes: [UInt8], at start: Int) -> Bool {
        var offset = start
        var kind: UInt8?
        for _ in 0..<framesRequired {
            guard offset + 4 <= bytes.count, let (length, frameKind) = header(bytes, at: offset),
                kind == nil || kind == frameKind
            else { return false }
            kind = frameKind
            if let length {
                offset += length
            } else {
                // Free format: up to the next header of the same kind.
                let end = min(bytes.count - 4, offset + freeFormatBytes)
                guard offset + 4 < end,
                    let next = (offset + 4..<end).first(where: { header(bytes, at: $0).map { $0.kind == frameKind } ?? false })
                else { return false }
                offset = next
            }
        }
        return true
    }

    /// The header at `offset`: its frame's length (nil for free format) and its kind (version,
    /// layer and sampling rate, which stay the same from frame to frame); nil for no header.
    private static func header(_ bytes: [UInt8], at offset: Int) -> (length: Int?, kind: UInt8)? {
        let h = Array(bytes[offset..<(offset + 4)])
        guard h[0] == 0xFF, h[1] & 0xE0 == 0xE0, h[1] >> 3 & 3 != 1, h[1] >> 1 & 3 != 0, h[2] >> 4 != 15,
            h[2] >> 2 & 3 != 3
        else { return nil }
        return (h[2] >> 4 == 0 ? nil : frameLength(h), h[1] & 0x1E | h[2] & 0x0C)
    }

    /// Bitrates in kbit/s by bitrate index 1…14: MPEG-1 layers I, II, III; MPEG-2/2.5 layer I;
    /// MPEG-2/2.5 layers II and III (ISO/IEC 11172-3, 13818-3).
    private static let bitrates: [[Int]] = [
        [32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
        [32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
        [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
        [32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
        [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
    ]

    /// The length in bytes of the frame a valid header starts; nil for anything else (no sync, a
    /// reserved version, layer or rate, a free or bad bitrate).
    static func frameLength(_ h: [UInt8]) -> Int? {
        guard h.count >= 4, h[0] == 0xFF, h[1] & 0xE0 == 0xE0 else { return nil }
        let version = Int(h[1] >> 3 & 3), layer = Int(h[1] >> 1 & 3)  // version 3: MPEG-1; layer 3: I
        let bitrateIndex = Int(h[2] >> 4), rateIndex = Int(h[2] >> 2 & 3), padding = Int(h[2] >> 1 & 1)
        guard version != 1, layer != 0, (1...14).contains(bitrateIndex), rateIndex != 3 else { return nil }
        let isMPEG1 = version == 3
        let table = isMPEG1 ? 3 - layer : (layer == 3 ? 3 : 4)
        let bitrate = bitrates[table][bitrateIndex - 1] * 1000
        let rate = [44100, 48000, 32000][rateIndex] / (isMPEG1 ? 1 : version == 2 ? 2 : 4)
        switch layer {
        case 3: return (12 * bitrate / rate + padding) * 4
        case 1 where !isMPEG1: return 72 * bitrate / rate + padding
        default: return 144 * bitrate / rate + padding
        }
    }
}
