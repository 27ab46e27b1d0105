import FuzzDriver
import Glibc
import Logging
import S4Core
import S4Detection
import S4RandomModel
import S4Service

/// The detector's model: small, so that each input runs in well under a millisecond per event.
let model = S4Model.random(.smallStages)

/// Every utterance is an event (`reportEverything`, threshold 0), so that the detection path
/// (timestamps included) runs on random audio.
let configuration: DetectorConfiguration = {
    var configuration = DetectorConfiguration()
    configuration.threshold = 0
    configuration.reportEverything = true
    return configuration
}()

let limits: WyomingLimits = {
    var limits = WyomingLimits()
    limits.payloadBytes = 64 * 1024
    limits.eventSeconds = 5
    return limits
}()

let logger = Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() }
let discard = open("/dev/null", O_WRONLY)

@_cdecl("FuzzWyomingSession_main")
func main(argc: CInt, argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc: argc, argv: argv) { data, size in fuzzSession(data, size) }
}

/// The input is what one client sends, start to end: it goes into a pipe the connection reads
/// (the fuzzer's inputs are shorter than a pipe's buffer), the answers go to /dev/null.
func fuzzSession(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var ends: [Int32] = [-1, -1]
    precondition(pipe(&ends) == 0 && size <= 65536)
    var offset = 0
    while let data, offset < size {
        let written = write(ends[1], data + offset, size - offset)
        precondition(written > 0, "pipe write failed")
        offset += written
    }
    close(ends[1])
    WyomingConnection(
        input: ends[0], output: discard, client: "fuzz", model: model, configuration: configuration, limits: limits,
        logger: logger
    ).run()
    close(ends[0])
    return 0
}
