import ArgumentParser
import Dispatch
import Foundation
import S4Audio
import S4Core
import S4Service

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure speed on one thread: seconds of computation per second of audio, and GFLOP/s.",
        discussion: "Runs the model per sample, in chunks, and in convolution mode over noise at --rate. "
            + "With --random the model is a randomly initialised one of the given size instead.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Sampling rate of the benchmark audio (Hz); Δ is rescaled to it.")
    var rate: Int = 16000

    @Option(help: "Seconds of audio per measurement.")
    var seconds: Double = 3

    @Option(help: "Chunk length for the chunked mode, in milliseconds (≤ 10 ms as the issue asks).")
    var chunkMilliseconds: Double = 10

    @Option(help: "Benchmark a random model of this size instead: LAYERSxWIDTHxSTATE, e.g. 6x128x64.")
    var random: String?

    @Option(help: "Kernel of the random model: dplr or diag.")
    var kernel: String = "dplr"

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func validate() throws {
        guard seconds.isFinite, seconds > 0, seconds <= 3600 else { throw ValidationError("--seconds must be in (0, 3600]") }
        guard chunkMilliseconds.isFinite, chunkMilliseconds > 0, chunkMilliseconds <= 1000 else {
            throw ValidationError("--chunk-milliseconds must be in (0, 1000]")
        }
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

        func timeRecurrent(chunk: Int) -> Double {
            let state = recurrent.makeState(chunkCapacity: chunk)
            return Self.time {
                audio.withUnsafeBufferPointer { all in
                    var offset = 0
                    while offset < all.count {
                        let n = min(chunk, all.count - offset)
                        recurrent.process(UnsafeBufferPointer(rebasing: all[offset..<(offset + n)]), state: state)
                        offset += n
                    }
                }
            }
        }
        let chunk = max(1, Int(chunkMilliseconds / 1000 * sampleRate))
        let perSample = timeRecurrent(chunk: 1)
        let chunked = timeRecurrent(chunk: chunk)

        let window = model.windowLength(forSampleRate: sampleRate)
        var convolution: ConvolutionNetwork!
        let setUp = Self.time { convolution = ConvolutionNetwork(model: model, sampleRate: sampleRate, length: window) }
        let windows = max(1, audioSamples / window)
        let convolutionTime = Self.time {
            for w in 0..<windows {
                let start = (w * window) % max(1, audio.count - window + 1)
                _ = convolution.logits(Array(audio[start..<min(audio.count, start + window)]))
            }
        }
        let audioSeconds = Double(audioSamples) / sampleRate
        let convolutionAudioSeconds = Double(windows * min(window, audio.count)) / sampleRate
        let flopsPerSample = model.recurrentFlopsPerSample
        let rows: [(String, Double, Double, Double)] = [
            ("per_sample", perSample, audioSeconds, flopsPerSample * Double(audioSamples)),
            ("chunked", chunked, audioSeconds, flopsPerSample * Double(audioSamples)),
            ("convolution", convolutionTime, convolutionAudioSeconds,
             model.convolutionFlops(length: window) * Double(windows)),
        ]
        if json {
            var fields: [(String, JSONLine)] = [
                ("model", .string(source)), ("parameters", .integer(model.parameterCount)),
                ("sample_rate", .integer(rate)), ("chunk_samples", .integer(chunk)), ("threads", .integer(1)),
                ("convolution_setup_seconds", .number(setUp)),
            ]
            for (name, time, audio, flops) in rows {
                fields.append((name, .object([
                    ("seconds_per_audio_second", .number(time / audio)),
                    ("times_real_time", .number(audio / time)),
                    ("gflops", .number(flops / time / 1e9)),
                ])))
            }
            JSONLine.object(fields).emit()
        } else {
            print("model: \(source) (\(model.parameterCount) parameters), \(rate) Hz, one thread")
            print("mode          s/audio-s   x real time   GFLOP/s")
            for (name, time, audio, flops) in rows {
                let label = name == "chunked" ? "chunked/\(chunk)" : name
                print(label.padding(toLength: 13, withPad: " ", startingAt: 0)
                      + String(format: " %9.4f   %11.1f   %7.2f", time / audio, audio / time, flops / time / 1e9))
            }
            print(String(format: "convolution set-up (kernels at %d Hz, %d samples): %.2f s", rate, window, setUp))
        }
    }

    private func loadModel() throws -> (S4Model, String) {
        guard let random else {
            let (model, path) = try modelOptions.load()
            return (model, path)
        }
        let configuration = try RandomModelCommand.configuration(size: random, kernel: kernel, seed: 1)
        return (S4Model.random(configuration), "random \(random) \(kernel)")
    }

    static func time(_ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}
