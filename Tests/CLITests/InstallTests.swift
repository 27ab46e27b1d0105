import Foundation
import Testing

/// `make install-files` (what `make install` and `make deb` copy) under DESTDIR with another
/// PREFIX puts every file below DESTDIR, the units' paths following PREFIX; `make uninstall` with
/// the same settings removes them all but the options files.
@Suite struct InstallTests {
    @Test func installAndUninstallStayUnderDestdirAndFollowPrefix() throws {
        let root = CLI.path("destdir")
        let settings = ["-C", CLI.packageRoot.path, "DESTDIR=\(root)", "PREFIX=/opt/s4", "BIN=\(CLI.binary)"]
        let install = try Program.run("make", ["--no-print-directory", "install-files"] + settings)
        #expect(install.status == 0, "\(install.stderr)")
        let files = Set(FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? [])
        let expected = [
            "opt/s4/bin/s4listen", "opt/s4/share/s4listen/default.safetensors", "opt/s4/share/man/man1/s4listen.1",
            "opt/s4/share/bash-completion/completions/s4listen", "opt/s4/share/zsh/vendor-completions/_s4listen",
            "opt/s4/share/fish/vendor_completions.d/s4listen.fish", "etc/systemd/system/s4listen.service",
            "etc/systemd/system/s4listen-wyoming.service", "etc/default/s4listen", "etc/default/s4listen-wyoming",
        ]
        for file in expected { #expect(files.contains(file), "\(file) not installed: \(files.sorted())") }
        let unit = try String(contentsOfFile: "\(root)/etc/systemd/system/s4listen-wyoming.service", encoding: .utf8)
        #expect(unit.contains("ExecStart=/opt/s4/bin/s4listen serve"), "\(unit)")
        #expect(!unit.contains("/usr/local/"))
        let completion = try String(contentsOfFile: "\(root)/opt/s4/share/bash-completion/completions/s4listen", encoding: .utf8)
        #expect(completion.contains("serve") && completion.contains("--words"))

        let uninstall = try Program.run("make", ["--no-print-directory", "uninstall"] + settings)
        #expect(uninstall.status == 0, "\(uninstall.stderr)")
        let left = (FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? []).filter {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: "\(root)/\($0)", isDirectory: &isDirectory) && !isDirectory.boolValue
        }
        #expect(Set(left) == ["etc/default/s4listen", "etc/default/s4listen-wyoming"], "\(left.sorted())")
    }
}
