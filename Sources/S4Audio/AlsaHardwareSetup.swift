import CALSA

/// What a capture PCM agreed to after hw_params negotiation.
struct AlsaHardwareSetup: Equatable {
    var sampleRate: Int
    var channels: Int
    var encoding: SampleEncoding
    var periodFrames: Int

    /// Sample formats in order of preference. S16_LE comes first: it is what microphones deliver
    /// natively, and the `file` plugin reads its infile in the negotiated format, so raw 16-bit
    /// recordings replay unchanged. Float and 32-bit cover devices that offer nothing else.
    static let formats: [(snd_pcm_format_t, SampleEncoding)] = [
        (SND_PCM_FORMAT_S16_LE, .signed16), (SND_PCM_FORMAT_FLOAT_LE, .float32), (SND_PCM_FORMAT_S32_LE, .signed32),
    ]

    /// Negotiates RW interleaved access, a format from `formats`, the channels and the rate, and a
    /// period of about `periodFrames` (default 20 ms) with eight periods of buffer, so a consumer
    /// that stalls briefly does not overrun.
    ///
    /// - `rate`: exactly this rate (ALSA's plug layers may convert to it); nil takes the device's
    ///   native rate nearest to 16 kHz, with ALSA resampling switched off.
    /// - `channels`: exactly this many; nil takes the fewest the device offers (it is down-mixed).
    static func negotiate(
        pcm: OpaquePointer, rate: Int?, channels: Int?, periodFrames: Int?, source: String
    ) throws(AudioSourceError) -> AlsaHardwareSetup {
        var maybeParams: OpaquePointer?
        guard snd_pcm_hw_params_malloc(&maybeParams) == 0, let params = maybeParams else {
            throw .cannotOpen(source: source, reason: "out of memory for hardware parameters")
        }
        defer { snd_pcm_hw_params_free(params) }
        func check(_ code: Int32, _ what: @autoclosure () -> String) throws(AudioSourceError) {
            if code < 0 { throw .cannotOpen(source: source, reason: "\(what()): \(AlsaCapture.errorText(code))") }
        }

        try check(snd_pcm_hw_params_any(pcm, params), "no hardware configuration")
        try check(snd_pcm_hw_params_set_access(pcm, params, SND_PCM_ACCESS_RW_INTERLEAVED), "no interleaved read access")
        guard let (format, encoding) = formats.first(where: { snd_pcm_hw_params_test_format(pcm, params, $0.0) == 0 }) else {
            throw .cannotOpen(source: source, reason: "offers none of S16_LE, FLOAT_LE, S32_LE")
        }
        try check(snd_pcm_hw_params_set_format(pcm, params, format), "format")

        var low: UInt32 = 0, high: UInt32 = 0
        if let channels {
            guard snd_pcm_hw_params_set_channels(pcm, params, UInt32(channels)) == 0 else {
                _ = snd_pcm_hw_params_get_channels_min(params, &low)
                _ = snd_pcm_hw_params_get_channels_max(params, &high)
                throw .cannotOpen(source: source, reason: "\(channels) channels not offered (\(low)…\(high))")
            }
        } else {
            var fewest: UInt32 = 1
            try check(snd_pcm_hw_params_set_channels_near(pcm, params, &fewest), "channels")
        }

        var dir: Int32 = 0
        if let rate {
            guard snd_pcm_hw_params_set_rate(pcm, params, UInt32(rate), 0) == 0 else {
                _ = snd_pcm_hw_params_get_rate_min(params, &low, &dir)
                _ = snd_pcm_hw_params_get_rate_max(params, &high, &dir)
                throw .cannotOpen(source: source, reason: "\(rate) Hz not offered (\(low)…\(high) Hz)")
            }
        } else {
            try check(snd_pcm_hw_params_set_rate_resample(pcm, params, 0), "rate resampling")
            var nearest: UInt32 = 16000
            try check(snd_pcm_hw_params_set_rate_near(pcm, params, &nearest, &dir), "sampling rate")
        }
        var actualRate: UInt32 = 0
        try check(snd_pcm_hw_params_get_rate(params, &actualRate, &dir), "sampling rate")

        var period = snd_pcm_uframes_t(periodFrames ?? max(Int(actualRate) / 50, 32))
        try check(snd_pcm_hw_params_set_period_size_near(pcm, params, &period, &dir), "period size")
        var buffer = period * 8
        try check(snd_pcm_hw_params_set_buffer_size_near(pcm, params, &buffer), "buffer size")
        try check(snd_pcm_hw_params(pcm, params), "hardware parameters refused")

        var actualChannels: UInt32 = 0
        try check(snd_pcm_hw_params_get_channels(params, &actualChannels), "channels")
        try check(snd_pcm_hw_params_get_period_size(params, &period, &dir), "period size")
        return AlsaHardwareSetup(
            sampleRate: Int(actualRate), channels: Int(actualChannels), encoding: encoding, periodFrames: Int(period))
    }
}
