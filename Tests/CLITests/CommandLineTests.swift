import Foundation
import S4Core
import S4RandomModel
import Testing

/// The `s4listen` executable as a user runs it: JSON lines on standard output, messages on
/// standard error, exit status.
@Suite struct CommandLineTests {
    static let samples = CLI.samples
    static let directory = CLI.directory
    static var model: String { CLI.model }

    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> CLI.Result {
        try CLI.run(arguments, environment: environment)
    }

    @Test func classifyPrintsOneJSONLinePerFile() throws {
        let result = try Self.run(["classify", "--model", Self.model] + Self.samples)
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.lines
        #expect(lines.count == 2)
        for (line, file) in zip(lines, Self.samples) {
            #expect(line["file"] as? String == file)
            let scores = try #require(line["scores"] as? [String: Double])
            #expect(scores.count == 12)
            #expect(abs(scores.values.reduce(0, +) - 1) < 1e-4)
            let label = try #require(line["label"] as? String)
            #expect(line["score"] as? Double == scores[label])
            #expect(line["sample_rate"] as? Int == 16000)
        }
        #expect(result.stderr.contains("untrained"))
    }

    @Test func bothModesAgree() throws {
        let recurrent = try Self.run(["classify", "--model", Self.model, "--mode", "recurrent", Self.samples[0]]).lines[0]
        let convolution = try Self.run(["classify", "--model", Self.model, "--mode", "conv", Self.samples[0]]).lines[0]
        #expect(recurrent["label"] as? String == convolution["label"] as? String)
        let a = recurrent["scores"] as! [String: Double], b = convolution["scores"] as! [String: Double]
        #expect(a.keys.allSatisfy { abs(a[$0]! - b[$0]!) < 1e-4 })
    }

    @Test func aBadFileDoesNotStopTheBatch() throws {
        let bad = Self.directory.appendingPathComponent("bad.wav").path
        try "RIFF not really".write(toFile: bad, atomically: true, encoding: .utf8)
        let result = try Self.run(["classify", "--model", Self.model, Self.samples[0], bad, Self.samples[1]])
        #expect(result.status == 1)
        let lines = result.lines
        #expect(lines.count == 3)
        #expect(lines[0]["label"] != nil && lines[2]["label"] != nil)
        #expect((lines[1]["error"] as? String)?.hasPrefix("\(bad): cannot read audio") == true)
        #expect(result.stderr.contains(bad))
    }

    @Test func aBadModelIsRefusedClearly() throws {
        let bad = Self.directory.appendingPathComponent("bad.safetensors").path
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.model))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: bad))
        let result = try Self.run(["classify", "--model", bad, Self.samples[0]])
        #expect(result.status != 0)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("\(bad): model file is truncated"))
    }

    @Test func infoDescribesTheModel() throws {
        let result = try Self.run(["info", Self.model])
        #expect(result.status == 0)
        let line = try #require(result.lines.first)
        let stages = try #require(line["stages"] as? [[String: Any]])
        #expect(stages.count == 1)
        #expect(stages.first?["d_model"] as? Int == 8)
        #expect(stages.first?["n_layers"] as? Int == 2)
        #expect(stages.first?["kernel"] as? String == "dplr")
        #expect(line["untrained"] as? Bool == true)
        #expect((line["metadata"] as? [String: Any])?["format"] as? Int == 2)
        // A file without detection_threshold: the detector's default is in force.
        #expect(abs((line["threshold"] as? Double ?? 0) - 0.83) < 1e-6)
    }

    /// Without --threshold, `listen` and `info` use the model file's own `detection_threshold`;
    /// --threshold wins over it.
    @Test func theModelFilesThresholdIsUsedUnlessOneIsGiven() throws {
        var configuration = RandomModelConfiguration()
        configuration.width = 8
        configuration.labels = ["yes", "no"]  // every decision is a command
        func write(_ threshold: Float) throws -> String {
            configuration.detectionThreshold = threshold
            let path = CLI.path("threshold-\(threshold).safetensors")
            try Data(S4Model.random(configuration).safetensors()).write(to: URL(fileURLWithPath: path))
            return path
        }
        let (reportsAll, reportsNone) = (try write(0), try write(1))
        let scene = CLI.path("bursts.wav")
        try AudioScene.bursts(rate: 16000).wav().write(to: URL(fileURLWithPath: scene))
        func detections(_ model: String, _ extra: [String] = []) throws -> Int {
            let result = try Self.run(["listen", "--model", model, "--input", scene] + extra)
            #expect(result.status == 0, "\(result.stderr)")
            return result.lines.filter { $0["type"] as? String == "detection" }.count
        }
        #expect(try detections(reportsAll) == 3)
        #expect(try detections(reportsNone) == 0)
        #expect(try detections(reportsNone, ["--threshold", "0"]) == 3)
        let info = try #require(try Self.run(["info", reportsNone]).lines.first)
        #expect(info["threshold"] as? Double == 1)
    }

    /// The bundled default is found without flags, whatever the working directory.
    @Test func bundledDefaultModelIsFound() throws {
        let result = try Self.run(["info"], environment: ["S4LISTEN_MODEL": ""])
        #expect(result.status == 0, "\(result.stderr)")
        #expect((result.lines.first?["file"] as? String)?.hasSuffix("models/default.safetensors") == true)
    }

    /// The bundled model is a trained one and, through the whole engine, names the two bundled
    /// samples at their own rate and at 8 and 48 kHz (sox-resampled; Δ rescaled inside).
    @Test func bundledModelRecognisesTheSamples() throws {
        let info = try #require(try Self.run(["info"], environment: ["S4LISTEN_MODEL": ""]).lines.first)
        #expect(info["untrained"] as? Bool == false)
        var files = Self.samples
        for rate in [8000, 48000] {
            for sample in Self.samples {
                let name = URL(fileURLWithPath: sample).deletingPathExtension().lastPathComponent
                let out = Self.directory.appendingPathComponent("\(name)-\(rate).wav").path
                try Self.sox([sample, "-b", "16", out, "rate", "-h", String(rate)])
                files.append(out)
            }
        }
        let result = try Self.run(["classify"] + files, environment: ["S4LISTEN_MODEL": ""])
        #expect(result.status == 0, "\(result.stderr)")
        let labels = result.lines.map { $0["label"] as? String }
        #expect(labels == ["yes", "stop", "yes", "stop", "yes", "stop"])
    }

    /// `--jobs 3` keeps the order of the files given, and a file longer than a clip lists its
    /// detections: the two one-second samples joined ("yes" in the first second, "stop" in the
    /// second) give two, in order, each starting in its own word's second (its peak, `end`, may
    /// come a little after: a word is decided once it is complete).
    @Test func jobsKeepTheOrderAndLongFilesListTheirDetections() throws {
        let long = Self.directory.appendingPathComponent("yes-then-stop.wav").path
        try Self.sox(Self.samples + ["-b", "16", long, "pad", "0", "1"])
        let files = [Self.samples[0], long, Self.samples[1], Self.samples[0]]
        let result = try Self.run(["classify", "--jobs", "3", "--threshold", "0.3"] + files, environment: ["S4LISTEN_MODEL": ""])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.lines.map { $0["file"] as? String } == files)
        let detections = try #require(result.lines[1]["detections"] as? [[String: Any]])
        #expect(detections.map { $0["label"] as? String } == ["yes", "stop"])
        let spans = detections.map { ($0["start"] as? Double ?? -1, $0["end"] as? Double ?? -1) }
        for (index, span) in spans.enumerated() {
            let second = Double(index)
            #expect(second <= span.0 && span.0 < second + 1 && span.0 <= span.1 && span.1 < second + 1.3, "\(spans)")
        }
        #expect(result.lines[1]["seconds"] as? Double == 3)
    }

    @Test(arguments: ["listen", "classify"]) func badThresholdsAreRefused(command: String) throws {
        let input = command == "listen" ? ["--input", Self.samples[0]] : [Self.samples[0]]
        for value in ["1.5", "-0.1", "nan"] {
            let result = try Self.run([command, "--threshold=\(value)"] + input)
            #expect(result.status != 0 && result.stdout.isEmpty)
            #expect(result.stderr.contains("--threshold must be between 0 and 1"), "\(command) \(value): \(result.stderr)")
        }
    }

    static func sox(_ arguments: [String]) throws {
        let sox = Process()
        sox.executableURL = URL(fileURLWithPath: "/usr/bin/sox")
        sox.arguments = arguments
        try sox.run()
        sox.waitUntilExit()
        #expect(sox.terminationStatus == 0, "sox \(arguments)")
    }

    @Test func benchReportsEveryMode() throws {
        let result = try Self.run(["bench", "--model", Self.model, "--seconds", "1", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let line = try #require(result.lines.first)
        for mode in ["per_sample", "chunked", "convolution"] {
            let figures = try #require(line[mode] as? [String: Double], "\(mode)")
            #expect(figures["seconds_per_audio_second"]! > 0)
            #expect(figures["gflops"]! > 0)
        }
    }
}
