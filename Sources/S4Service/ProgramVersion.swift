/// s4listen's version, defined here only: `s4listen --version`, the program version in the
/// Wyoming `info` event, and the Debian package's version (the Makefile reads it from this line).
public let programVersion = "0.1.0"
