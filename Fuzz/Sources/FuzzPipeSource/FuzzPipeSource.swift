import FuzzDriver
import Glibc
import S4Audio

/// One temporary file, rewritten per input: the decoder reads it through a file descriptor as it
/// would a pipe.
nonisolated(unsafe) let scratch: Int32 = {
    var template = Array("/tmp/s4listen-fuzz-XXXXXX".utf8CString)
    let fd = mkstemp(&template)
    unlink(&template)
    return fd
}()

@_cdecl("FuzzPipeSource_main")
func main(argc: CInt, argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc: argc, argv: argv) { data, size in fuzzPipeSource(data!, size) }
}

func fuzzPipeSource(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    ftruncate(scratch, 0)
    _ = pwrite(scratch, data, size, 0)
    lseek(scratch, 0, SEEK_SET)
    // The first byte picks the declared channel count for raw input (a WAV header overrides it).
    let channels = size > 0 ? Int(data[0] % 4) + 1 : 1
    guard
        let source = try? PipeSource(
            fileDescriptor: dup(scratch), name: "fuzz", sampleRate: 16000, channels: channels,
            closesDescriptor: true)
    else { return 0 }
    var block = [Float](repeating: 0, count: 1024)
    while let count = try? block.withUnsafeMutableBufferPointer({ try source.read(into: $0) }), count > 0 {
        for sample in block[0..<count] where !(sample.isFinite && abs(sample) <= 1) {
            fatalError("decoded sample \(sample) outside [-1, 1]")
        }
    }
    return 0
}
