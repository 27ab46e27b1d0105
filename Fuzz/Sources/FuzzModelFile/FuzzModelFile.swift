import FuzzDriver
import S4Core

@_cdecl("FuzzModelFile_main")
func main(argc: CInt, argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc: argc, argv: argv) { data, size in fuzzModelFile(data!, size) }
}

func fuzzModelFile(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    // A refusal is the expected outcome for almost every input; a crash or a hang is the bug.
    guard let model = try? S4Model(safetensors: Array(UnsafeBufferPointer(start: data, count: size))) else { return 0 }
    // An accepted model must classify a window at another rate with finite logits.
    let network = RecurrentNetwork(model: model, sampleRate: 11025)
    let state = network.makeState()
    network.process((0..<2000).map { Float(($0 % 50) - 25) / 100 }, state: state)
    precondition(network.logits(state).allSatisfy(\.isFinite), "an accepted model computes NaN at 11.025 kHz")
    return 0
}
