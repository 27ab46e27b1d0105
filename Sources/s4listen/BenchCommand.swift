import ArgumentParser
import Foundation
import S4Audio
import S4Core
import S4RandomModel
import S4Service

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure speed on one thread: seconds of computation per second of audio, and GFLOP/s.",
        discussion: "Runs the model per sample, in chunks, and in convolution mode over noise at --rate, and "
            + "gives each stage's share of the chunked time and of the operations, and the share of the "
            + "core's FMA peak (a single-threaded OpenBLAS sgemm's rate) reached. Times are the thread's CPU "
            + "time, the best of --repeats runs. With --random the model is a randomly initialised one of "
            + "the given size instead.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Sampling rate of the benchmark audio (Hz); Δ is rescaled to it.")
    var rate: Int = 16000

    @Option(help: "Seconds of audio per measurement.")
    var seconds: Double = 3

    @Option(help: "Chunk length for the chunked mode, in milliseconds (10 ms: a typical capture period).")
    var chunkMilliseconds: Double = 10

    @Option(help: "Runs of each measurement; the fastest counts.")
    var repeats: Int = 3

    @Option(help: "Benchmark a random model instead, stage 0 of this size: LAYERSxWIDTHxSTATE, e.g. 6x128x64.")
    var random: String?

    @OptionGroup(title: "Random model") var shape: RandomShapeOptions

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func validate() throws {
        guard seconds.isFinite, seconds > 0, seconds <= 3600 else { throw ValidationError("--seconds must be in (0, 3600]") }
        guard chunkMilliseconds.isFinite, chunkMilliseconds > 0, chunkMilliseconds <= 1000 else {
            throw ValidationError("--chunk-milliseconds must be in (0, 1000]")
        }
        guard (1...100).contains(repeats) else { throw ValidationError("--repeats must be in 1...100") }
        guard supportedSampleRates.contains(rate) else {
            throw ValidationError(AudioSourceError.unsupportedRate(source: "--rate", rate: rate).description)
        }
    }

    func run() throws {
        let (model, source) = try loadModel()
        let sampleRate = Double(rate)
        let audioSamples = max(1, Int(seconds * sampleRate))
        var rng = SeededGenerator(seed: 7)
        let audio = (0..<audioSamples).map { _ in Float(0.1 * rng.normal()) }
        let recurrent = RecurrentNetwork(model: model, sampleRate: sampleRate)

        let chunk = max(1, Int(chunkMilliseconds / 1000 * sampleRate))
        let perSample = time(recurrent, audio: audio, chunk: 1)
        let chunked = time(recurrent, audio: audio, chunk: chunk)

        let window = model.windowLength(forSampleRate: sampleRate)
        var convolution: ConvolutionNetwork!
        let setUp = Self.cpuSeconds { convolution = ConvolutionNetwork(model: model, sampleRate: sampleRate, length: window) }
        let windows = max(1, audioSamples / window)
        let convolutionTime = fastest {
            for w in 0..<windows {
                let start = (w * window) % max(1, audio.count - window + 1)
                _ = convolution.logits(Array(audio[start..<min(audio.count, start + window)]))
            }
        }
        let audioSeconds = Double(audioSamples) / sampleRate
        let convolutionAudioSeconds = Double(windows * min(window, audio.count)) / sampleRate
        let stageFlops = model.recurrentFlopsPerSample(sampleRate: sampleRate)
        let flopsPerSample = stageFlops.reduce(0, +)
        // Stage 0 alone (with a trivial head) measures its share of the chunked time; the frame
        // stages have the rest.
        let frontEndTime =
            model.stages.count > 1
            ? time(RecurrentNetwork(model: Self.frontEnd(of: model), sampleRate: sampleRate), audio: audio, chunk: chunk)
            : chunked
        let stageTimes = model.stages.count > 1 ? [frontEndTime, max(0, chunked - frontEndTime)] : [chunked]
        let rows: [(String, Double, Double, Double)] = [
            ("per_sample", perSample, audioSeconds, flopsPerSample * Double(audioSamples)),
            ("chunked", chunked, audioSeconds, flopsPerSample * Double(audioSamples)),
            (
                "convolution", convolutionTime, convolutionAudioSeconds,
                model.convolutionFlops(length: window, sampleRate: sampleRate).reduce(0, +) * Double(windows)
            ),
        ]
        let peak = LinearMap.fmaPeak(time: Self.cpuSeconds)
        if json {
            var fields: [(String, JSONLine)] = [
                ("model", .string(source)), ("parameters", .integer(model.parameterCount)),
                ("sample_rate", .integer(rate)), ("chunk_samples", .integer(chunk)), ("threads", .integer(1)),
                ("convolution_setup_seconds", .number(setUp)), ("fma_peak_gflops", .number(peak / 1e9)),
            ]
            for (name, time, audio, flops) in rows {
                fields.append(
                    (
                        name,
                        .object([
                            ("seconds_per_audio_second", .number(time / audio)),
                            ("times_real_time", .number(audio / time)),
                            ("gflops", .number(flops / time / 1e9)),
                            ("peak_share", .number(flops / time / peak)),
                        ])
                    ))
            }
            fields.append(
                (
                    "stages",
                    .array(
                        stageTimes.indices.map { s in
                            .object([
                                ("stages", .string(Self.stageName(s, of: model))),
                                ("chunked_time_share", .number(stageTimes[s] / chunked)),
                                ("flop_share", .number(Self.flopShare(s, of: stageFlops, model: model))),
                            ])
                        })
                ))
            try JSONLine.object(fields).emit()
        } else {
            print("model: \(source) (\(model.parameterCount) parameters), \(rate) Hz, one thread, best of \(repeats)")
            print(String(format: "FMA peak (OpenBLAS sgemm, one thread): %.1f GFLOP/s", peak / 1e9))
            print("mode          s/audio-s   x real time   GFLOP/s   of peak")
            for (name, time, audio, flops) in rows {
                let label = name == "chunked" ? "chunked/\(chunk)" : name
                print(
                    label.padding(toLength: 13, withPad: " ", startingAt: 0)
                        + String(
                            format: " %9.4f   %11.1f   %7.2f   %6.1f%%", time / audio, audio / time, flops / time / 1e9,
                            100 * flops / time / peak))
            }
            print(String(format: "convolution set-up (kernels at %d Hz, %d samples): %.2f s", rate, window, setUp))
            for s in stageTimes.indices {
                print(
                    String(
                        format: "%@: %.0f%% of the chunked time, %.0f%% of the operations", Self.stageName(s, of: model),
                        100 * stageTimes[s] / chunked, 100 * Self.flopShare(s, of: stageFlops, model: model)))
            }
            try flushStandardOutput()
        }
    }

    private func loadModel() throws -> (S4Model, String) {
        guard let random else {
            let (model, path) = try modelOptions.load()
            return (model, path)
        }
        let configuration = try shape.configuration(size: random, seed: 1)
        let frames = shape.frames.map { " + frames \($0)" } ?? ""
        return (S4Model.random(configuration), "random \(random)\(shape.bank ? " bank" : "") \(shape.kernel)\(frames)")
    }

    /// Stage 0 of `model` with a trivial head: what the input-rate part costs by itself.
    static func frontEnd(of model: S4Model) -> S4Model {
        let h = model.stages[0].width, k = model.labels.count
        return S4Model(
            metadata: model.metadata, stages: [model.stages[0]], pooling: nil,
            finalNorm: .layer(weight: Array(repeating: 1, count: h), bias: Array(repeating: 0, count: h), epsilon: 1e-5),
            decoder: LinearMap(
                weight: Array(repeating: 0, count: k * h), bias: Array(repeating: 0, count: k),
                inputCount: h, outputCount: k))
    }

    /// "stage 0 (input clock)" or, for the frame stages together, "stages 1-2 (frame clock)".
    static func stageName(_ index: Int, of model: S4Model) -> String {
        if index == 0 { return "stage 0 (input clock, with pooling)" }
        let last = model.stages.count - 1
        return last == 1 ? "stage 1 (frame clock, with head)" : "stages 1-\(last) (frame clock, with head)"
    }

    /// Stage 0's share of the recurrent operations, or that of all the frame stages.
    static func flopShare(_ index: Int, of flops: [Double], model: S4Model) -> Double {
        let total = flops.reduce(0, +)
        return index == 0 ? flops[0] / total : flops.dropFirst().reduce(0, +) / total
    }

    /// Seconds to stream `audio` through `network` in chunks of `chunk` samples, from a zero state.
    func time(_ network: RecurrentNetwork, audio: [Float], chunk: Int) -> Double {
        let state = network.makeState(chunkCapacity: chunk)
        return fastest {
            state.reset()
            audio.withUnsafeBufferPointer { all in
                var offset = 0
                while offset < all.count {
                    let n = min(chunk, all.count - offset)
                    network.process(UnsafeBufferPointer(rebasing: all[offset..<(offset + n)]), state: state)
                    offset += n
                }
            }
        }
    }

    /// The fastest of `repeats` runs of `body`, in CPU seconds.
    func fastest(_ body: () -> Void) -> Double {
        (0..<repeats).map { _ in Self.cpuSeconds(body) }.min()!
    }

    /// CPU seconds this thread spends in `body`: its cost, without the time spent waiting for a
    /// core on a busy machine (on an idle one the two agree).
    static func cpuSeconds(_ body: () -> Void) -> Double {
        func now() -> Double {
            var time = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
            return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
        }
        let start = now()
        body()
        return now() - start
    }

}
