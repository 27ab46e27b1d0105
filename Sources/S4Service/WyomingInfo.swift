import Foundation
import S4Core

/// The `info` event, the answer to `describe`: one wake-word program, s4listen, whose wake models
/// are the model's command words (every label but `_unknown_` and `_silence_`).
public enum WyomingInfo {
    static var attribution: [String: Any] {
        ["name": "s4listen (S4: Gu, Goel, Ré, ICLR 2022)", "url": "https://arxiv.org/abs/2111.00396"]
    }

    static func event(for model: S4Model) -> WyomingEvent {
        let metadata = model.metadata
        // The training data's licence when the file names it (Speech Commands: CC BY 4.0).
        let provenance = (try? JSONSerialization.jsonObject(with: Data(metadata.json.utf8))) as? [String: Any]
        let licence = (provenance?["trained_on"] as? [String: Any])?["licence"] as? String
        var modelAttribution = attribution
        if let licence { modelAttribution["name"] = "s4listen; trained on \(licence)" }
        let version = fingerprint(metadata.json)
        // Home Assistant lists a wake word by its description: "Go", as openWakeWord's "Hey Jarvis".
        let models: [[String: Any]] = commands(of: model).map { word in
            [
                "name": word, "phrase": word, "description": word.prefix(1).uppercased() + word.dropFirst(),
                "languages": ["en"], "attribution": modelAttribution, "installed": true, "version": version,
            ]
        }
        let program: [String: Any] = [
            "name": "s4listen",
            "description": "Spoken commands with an S4 state-space model, at the client's sampling rate without resampling",
            "attribution": attribution, "installed": true, "version": programVersion, "models": models,
        ]
        return WyomingEvent(
            type: "info",
            data: [
                "asr": [Any](), "tts": [Any](), "handle": [Any](), "intent": [Any](), "wake": [program], "mic": [Any](),
                "snd": [Any](),
            ])
    }

    /// The labels a client can ask for: the commands.
    public static func commands(of model: S4Model) -> [String] { model.labels.filter(Vocabulary.isCommand) }

    /// A model's version: FNV-1a of its metadata (which records its training run and metrics), so
    /// a reloaded, retrained model shows a new one.
    static func fingerprint(_ text: String) -> String {
        var hash: UInt32 = 2_166_136_261
        for byte in text.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return String(format: "%08x", hash)
    }
}
