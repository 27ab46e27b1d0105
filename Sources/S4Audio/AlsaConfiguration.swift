import CALSA

/// An ALSA configuration tree loaded from text in this process, so that a PCM can be defined without
/// touching `~/.asoundrc`, `ALSA_CONFIG_PATH` or the environment: parallel tests and a daemon
/// replaying a recording both stay self-contained.
final class AlsaConfiguration {
    let tree: OpaquePointer

    init(text: String, source: String) throws(AudioSourceError) {
        var input: OpaquePointer?
        var bytes = Array(text.utf8)
        let opened = bytes.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { snd_input_buffer_open(&input, $0.baseAddress, buffer.count) }
        }
        guard opened == 0, let input else {
            throw .cannotOpen(source: source, reason: "ALSA configuration: \(AlsaCapture.errorText(opened))")
        }
        defer { snd_input_close(input) }
        var tree: OpaquePointer?
        let created = snd_config_top(&tree)
        guard created == 0, let tree else {
            throw .cannotOpen(source: source, reason: "ALSA configuration: \(AlsaCapture.errorText(created))")
        }
        let loaded = snd_config_load(tree, input)
        guard loaded == 0 else {
            snd_config_delete(tree)
            throw .cannotOpen(source: source, reason: "ALSA configuration text does not parse: \(AlsaCapture.errorText(loaded))")
        }
        self.tree = tree
    }

    deinit { snd_config_delete(tree) }

    /// Text defining PCM `name` (a plain identifier) as ALSA's `file` plugin over a `null` slave,
    /// capturing from `infile` (raw interleaved S16_LE; a FIFO gives a live, writer-paced source). The
    /// slave is inline, so the text works without the system's alsa.conf; the plugin also insists on
    /// an output file, hence `/dev/null`.
    static func filePlugin(name: String, infile: String) -> String {
        """
        pcm.\(name) {
            type file
            slave.pcm { type null }
            file "/dev/null"
            infile \(quoted(infile))
            format "raw"
        }
        """
    }

    /// A config string literal, with quotes and backslashes escaped.
    static func quoted(_ text: String) -> String {
        var result = "\""
        for character in text {
            if character == "\"" || character == "\\" { result.append("\\") }
            result.append(character)
        }
        return result + "\""
    }
}
