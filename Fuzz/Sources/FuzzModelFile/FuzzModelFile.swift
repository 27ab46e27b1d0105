import FuzzDriver
import S4Core

@_cdecl("FuzzModelFile_main")
func main(argc: CInt, argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc: argc, argv: argv) { data, size in fuzzModelFile(data!, size) }
}

func fuzzModelFile(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    // A refusal is the expected outcome for almost every input; a crash or a hang is the bug.
    guard let model = try? S4Model(safetensors: Array(UnsafeBufferPointer(start: data, count: size))) else { return 0 }
    // An accepted model must run on other audio at another rate without a crash or a hang. Its
    // logits there may still overflow: the loader's probe (a full-scale chirp at every common
    // rate) refuses models that are broken on any loud input, not every file whose weights are
    // tuned to overflow on some signal (a run of this target found one that the chirp passes and
    // this sawtooth does not). No probe can; at run time a NaN score passes no threshold.
    let network = RecurrentNetwork(model: model, sampleRate: 11025)
    let state = network.makeState()
    network.process((0..<2000).map { Float(($0 % 50) - 25) / 100 }, state: state)
    _ = network.logits(state)
    return 0
}
