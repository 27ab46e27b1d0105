import Foundation
import S4RandomModel
import Testing

@testable import S4Core

/// A streaming head (`head.pooling: "frame"`): logits at every frame from one state carried
/// through the stream (docs/model-format.md).
@Suite struct StreamingHeadTests {
    static func model(kernel: ModelMetadata.Kernel = .diag, window: Int = 4) -> S4Model {
        var configuration = RandomModelConfiguration.smallStreaming
        configuration.headWindowFrames = window
        configuration.stateSize = 16
        configuration.kernel = kernel
        configuration.discretization = kernel == .dplr ? .bilinear : .zoh
        configuration.seed = 5
        return S4Model.random(configuration)
    }

    static func frameLogits(_ model: S4Model, _ samples: [Float], rate: Double, chunks: [Int]) -> [[Float]] {
        let network = RecurrentNetwork(model: model, sampleRate: rate)
        let state = network.makeState()
        var frames: [[Float]] = []
        var offset = 0, k = 0
        while offset < samples.count {
            let n = min(chunks[k % chunks.count], samples.count - offset)
            samples[offset..<(offset + n)].withUnsafeBufferPointer { piece in
                network.stream(piece, state: state) { frames.append(Array($0)) }
            }
            offset += n
            k += 1
        }
        return frames
    }

    /// Chunks of any size give the same frames as one sample at a time: the same arithmetic on
    /// the same state, only cut differently (bit-exact but for BLAS's sgemm over several frames
    /// against sgemv over one: 1e-6 of the logits' scale).
    @Test(arguments: [16000.0, 44100, 8000])
    func chunkedEqualsPerSample(rate: Double) {
        let model = Self.model()
        let samples = StageTests.signal(count: Int(rate * 1.3), rate: rate, seed: 3)
        let single = Self.frameLogits(model, samples, rate: rate, chunks: [1])
        let chunked = Self.frameLogits(model, samples, rate: rate, chunks: [160, 7, 1023, 441])
        #expect(single.count == 130 && chunked.count == 130)
        let scale = single.joined().map(abs).max() ?? 1
        let difference = zip(single.joined(), chunked.joined()).map { abs($0 - $1) }.max() ?? .infinity
        #expect(difference <= 1e-6 * scale, "\(difference) of \(scale)")
    }

    /// One state through the stream, never reset: a word's frames differ after other audio from
    /// the same word at the start of a stream.
    @Test func theStateCarriesThroughTheStream() {
        let model = Self.model()
        let word = StageTests.signal(count: 16000, rate: 16000, seed: 4)
        let before = StageTests.signal(count: 8000, rate: 16000, seed: 5)
        let alone = Self.frameLogits(model, word, rate: 16000, chunks: [160])
        let after = Self.frameLogits(model, before + word, rate: 16000, chunks: [160])
        #expect(after.count == alone.count + 50)
        #expect(Array(after.suffix(alone.count)) != alone)
    }

    /// A head's window of W frames gives at each frame the mean of the last W frames' logits
    /// of the same network without one (of all so far at the start): the same sums in another
    /// order, to 1e-6 of the logits' scale.
    @Test func theWindowIsTheMeanOfTheLastFrames() throws {
        let samples = StageTests.signal(count: 16000, rate: 16000, seed: 6)
        let each = Self.frameLogits(Self.model(window: 1), samples, rate: 16000, chunks: [160, 33])
        let windowed = Self.frameLogits(Self.model(window: 4), samples, rate: 16000, chunks: [160, 33])
        try #require(each.count == 100 && windowed.count == 100)
        let expected = each.indices.map { f in
            let last = each[max(0, f - 3)...f]
            return (0..<each[0].count).map { j in last.map { $0[j] }.reduce(0, +) / Float(last.count) }
        }
        let scale = each.joined().map(abs).max() ?? 1
        let difference = zip(expected.joined(), windowed.joined()).map { abs($0 - $1) }.max() ?? .infinity
        #expect(difference <= 1e-6 * scale, "\(difference) of \(scale)")
        #expect(windowed[0] == each[0] && windowed[5] != each[5])
    }

    /// The decoder is affine, so the mean of the frames' logits over a window is the clip head's
    /// logits for it; convolution mode computes the latter independently (FFT kernels of each
    /// stage over the window), so streaming = convolution within the tolerance of that test.
    @Test(arguments: [(ModelMetadata.Kernel.diag, 16000.0), (.dplr, 44100), (.diag, 11025)])
    func meanOfFramesEqualsConvolution(kernel: ModelMetadata.Kernel, rate: Double) {
        let model = Self.model(kernel: kernel, window: 1)
        let length = model.windowLength(forSampleRate: rate)
        let window = StageTests.signal(count: length, rate: rate, seed: 9)
        let frames = Self.frameLogits(model, window, rate: rate, chunks: [160])
        let mean = (0..<frames[0].count).map { j in frames.map { $0[j] }.reduce(0, +) / Float(frames.count) }
        let convolution = ConvolutionNetwork(model: model, sampleRate: rate, length: length).logits(window)
        let scale = convolution.map(abs).max() ?? 1
        let difference = zip(mean, convolution).map { abs($0 - $1) }.max() ?? .infinity
        #expect(difference <= 5e-5 * max(1, scale), "\(difference) of \(scale)")
    }

    /// The head's kind survives a save and load; a file whose streaming head has no frames, or no
    /// label for "no command", is refused with a message.
    @Test func theHeadIsReadAndChecked() throws {
        let model = Self.model()
        let loaded = try S4Model(safetensors: model.safetensors())
        #expect(loaded.metadata.headPooling == .frame && loaded.metadata.headWindowFrames == 4)
        #expect(loaded.metadata.labels.last == "_nothing_")

        func refused(_ edit: (inout [String: Any]) -> Void) -> String {
            var object = (try? JSONSerialization.jsonObject(with: Data(model.metadata.json.utf8))) as? [String: Any] ?? [:]
            edit(&object)
            let text = String(decoding: (try? JSONSerialization.data(withJSONObject: object)) ?? Data(), as: UTF8.self)
            do {
                _ = try ModelMetadata(json: text)
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        #expect(refused { $0["labels"] = Vocabulary.commands + ["maybe"] }.contains("needs a label for no command"))
        #expect(refused { $0["head"] = ["norm": "layer", "norm_eps": 1e-5, "pooling": "max"] }.contains("head.pooling \"max\""))
        for frames in [0, 1001] {
            #expect(
                refused { $0["head"] = ["norm": "layer", "norm_eps": 1e-5, "pooling": "frame", "window_frames": frames] }
                    .contains("head.window_frames must be 1 to 1000, got \(frames)"))
        }
        #expect(
            refused { $0["head"] = ["norm": "layer", "norm_eps": 1e-5, "pooling": "mean", "window_frames": 2] }
                .contains("head.window_frames is for a streaming head"))
        var older = (try? JSONSerialization.jsonObject(with: Data(model.metadata.json.utf8))) as? [String: Any] ?? [:]
        older["head"] = ["norm": "layer", "norm_eps": 1e-5, "pooling": "frame"]
        let olderText = String(decoding: (try? JSONSerialization.data(withJSONObject: older)) ?? Data(), as: UTF8.self)
        #expect((try? ModelMetadata(json: olderText))?.headWindowFrames == 1, "a file from before windows: each frame's own")
        var oneStage = RandomModelConfiguration()
        oneStage.labels = Vocabulary.commands + ["_nothing_"]
        let flat = S4Model.random(oneStage)
        #expect(
            refused { object in
                object = (try? JSONSerialization.jsonObject(with: Data(flat.metadata.json.utf8))) as? [String: Any] ?? [:]
                object["head"] = ["norm": "layer", "norm_eps": 1e-5, "pooling": "frame"]
            }.contains("needs frame stages"))
    }
}
