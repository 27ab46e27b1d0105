/// Sampling rates the engine runs at and sources deliver (files, pipes, devices, clients of
/// `serve`, `bench`, a model's training rate): a rate outside is taken as a broken header or a
/// typo and refused, rather than fed to the model with an absurd Δ.
public let supportedSampleRates = 1000...384_000
