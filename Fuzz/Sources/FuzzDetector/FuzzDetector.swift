import FuzzDriver
import S4Core
import S4Detection
import S4RandomModel

/// A small two-stage random model; the detector is made per input (its state is the subject).
let model = S4Model.random(.smallStages)

@_cdecl("FuzzDetector_main")
func main(argc: CInt, argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc: argc, argv: argv) { data, size in fuzzDetector(data!, size) }
}

func fuzzDetector(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    // The first byte picks the rate; the rest are float samples as they come (NaN and infinities too).
    let rates = [8000.0, 11025, 16000, 44100, 48000]
    let detector = KeywordDetector(model: model, sampleRate: rates[Int(data[0]) % rates.count])
    let samples = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    var floats = [Float](repeating: 0, count: samples.count / 4)
    for i in floats.indices { floats[i] = samples.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
    // Fed in pieces of varying size, then the stream ends.
    var offset = 0, piece = 1
    var events = [DetectionEvent]()
    while offset < floats.count {
        let n = min(piece, floats.count - offset)
        events += detector.process(Array(floats[offset..<(offset + n)]))
        offset += n
        piece = piece * 5 % 4093 + 1
    }
    events += detector.finish()
    for event in events {
        precondition(event.score.isFinite && event.end >= event.start, "bad event \(event)")
    }
    return 0
}
