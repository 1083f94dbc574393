import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The CLI contract: exit codes and one-line errors.
@Suite struct CLITests {
    func cli(_ arguments: [String]) throws -> Subprocess.Result {
        try Subprocess.run([TestEnvironment.binary] + arguments, timeout: 60)
    }

    @Test func configCheckExplainsErrors() throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        TestEnvironment.write("\(directory)/bad.json", #"{"sync": {"bandwith": "2MB/s"}}"#)
        let bad = try cli(["config", "check", "--config", "\(directory)/bad.json"])
        #expect(bad.status == 1)
        #expect(bad.output.contains("sync.bandwith: unknown key \"bandwith\" (did you mean \"bandwidth\"?)"), "\(bad)")
        #expect(bad.output.split(separator: "\n").count == 1, "one line: \(bad)")

        TestEnvironment.write("\(directory)/good.json", #"{"profile": "rpi4-arm64", "storage": {"quota": "2GiB"}}"#)
        let good = try cli(["config", "check", "--config", "\(directory)/good.json"])
        #expect(good.status == 0, "\(good)")
        #expect(good.output.contains("profile: rpi4-arm64"))

        let missing = try cli(["config", "check", "--config", "\(directory)/nope.json"])
        #expect(missing.status == 1)
        #expect(missing.output.contains("nope.json"))
    }

    @Test func versionIsOneLine() throws {
        let result = try cli(["--version"])
        #expect(result.status == 0, "\(result)")
        #expect(result.output.hasPrefix("satellite-lite "), "\(result)")
        #expect(result.output.split(separator: "\n").count == 1, "\(result)")
        let help = try cli(["--help"])
        #expect(help.output.contains("--version"), "the root help lists it")
        // Only the root command has it.
        #expect(try cli(["sync", "--version"]).status == 64)
    }

    @Test func usageErrorsExit64() throws {
        for arguments in [
            ["serve", "--no-such-flag"], ["no-such-command"], ["--bogus"], ["config", "nope"], ["sync", "--config"],
            ["status", "--json=yes"], ["gc", "extra"], ["hooks", "run"], ["hooks", "run", "--event", "bogus"],
            ["runtime-config", "--runtime", "nope"], ["hash"],
        ] {
            let result = try cli(arguments)
            #expect(result.status == 64, "\(arguments): \(result)")
            #expect(result.output.hasPrefix("Error: "), "\(arguments): \(result)")
            #expect(result.output.contains("Usage: satellite-lite"), "\(arguments): \(result)")
        }
        let typo = try cli(["status", "--jsno"])
        #expect(typo.output.contains("unknown option '--jsno' (did you mean '--json'?)"), "\(typo)")
    }

    @Test func helpAtEveryLevel() throws {
        for arguments in [[], ["--help"], ["help"], ["help", "hooks", "run"], ["hooks", "run", "-h"], ["config"], ["gc", "--help"]] {
            let result = try cli(arguments)
            #expect(result.status == 0, "\(arguments): \(result)")
            #expect(result.output.contains("USAGE: satellite-lite"), "\(arguments): \(result)")
        }
        let top = try cli(["--help"])
        for command in ["run", "serve", "sync", "status", "config", "profiles", "gc", "verify", "hooks", "runtime-config"] {
            #expect(top.output.contains("\n  \(command) "), "\(command) listed")
        }
        #expect(try cli(["gc", "--help"]).output.contains("--dry-run"))
    }

    @Test func optionValueForms() throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        TestEnvironment.write("\(directory)/c.json", #"{"profile": "bbb-armv7", "storage": {"path": "\#(directory)/s"}}"#)
        for arguments in [["config", "check", "--config", "\(directory)/c.json"], ["config", "check", "--config=\(directory)/c.json"]] {
            let result = try cli(arguments)
            #expect(result.status == 0, "\(arguments): \(result)")
            #expect(result.output.contains("profile: bbb-armv7"), "\(arguments): \(result)")
        }
    }

    /// Every config example in docs/ and README, and every profile in hw-profiles/ (named by
    /// path), passes `config check`: what a user copying them runs.
    @Test func docsExamplesAndProfilesPassConfigCheck() throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        let examples = try DocExamples.configBlocks()
        #expect(examples.count >= 4)
        for (index, example) in examples.enumerated() {
            TestEnvironment.write("\(directory)/example-\(index).json", example.text)
            let result = try cli(["config", "check", "--config", "\(directory)/example-\(index).json"])
            #expect(result.status == 0, "example in \(example.file): \(result)\n\(example.text)")
            #expect(result.output.hasPrefix("config: \(directory)/example-\(index).json: OK"), "\(result)")
        }
        let listing = try Subprocess.run(["sh", "-c", "ls \(TestEnvironment.repositoryRoot)/hw-profiles/*.json"])
        let profiles = listing.output.split(separator: "\n").map(String.init)
        #expect(profiles.count >= 7)
        for (index, profile) in profiles.enumerated() {
            TestEnvironment.write("\(directory)/profile-\(index).json", #"{"profile": "\#(profile)"}"#)
            let result = try cli(["config", "check", "--config", "\(directory)/profile-\(index).json"])
            #expect(result.status == 0, "\(profile): \(result)")
        }
    }

    @Test func profilesAreListed() throws {
        let result = try cli(["profiles"])
        #expect(result.status == 0)
        #expect(result.output.contains("generic-amd64"))
        #expect(result.output.contains("rpi4-arm64"))
        #expect(result.output.contains("detected:"))
    }

    @Test func serveRefusesABusyPort() throws {
        let first = try SatelliteProcess()
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        TestEnvironment.write(
            "\(directory)/c.json",
            #"{"storage": {"path": "\#(directory)/s"}, "registry": {"listen": "\#(first.address)"}}"#)
        let second = try cli(["serve", "--config", "\(directory)/c.json"])
        #expect(second.status == 1)
        #expect(second.output.contains("cannot listen on \(first.address)"), "\(second)")
    }
}

/// `run`: SIGHUP reloads the config (a broken one is refused and the old one kept), SIGTERM
/// stops it cleanly.
@Suite struct RunCommandTests {
    @Test func reloadsOnSIGHUPAndStopsOnSIGTERM() throws {
        let satellite = try SatelliteProcess(command: "run")
        guard let child = satellite.child else {
            Issue.record("not started")
            return
        }
        let original = TestEnvironment.read(satellite.configPath) ?? ""
        TestEnvironment.write(satellite.configPath, "{\"storage\": ")
        child.signal(SIGHUP)
        var log = ""
        for _ in 0..<50 {
            log = TestEnvironment.read(satellite.logPath) ?? ""
            if log.contains("reload failed") { break }
            TestEnvironment.sleep(0.1)
        }
        #expect(log.contains("configuration reload failed; keeping the previous one"), "\(log)")
        #expect(try Subprocess.run(["curl", "-sf", "http://\(satellite.address)/healthz"]).status == 0, "still serving")
        TestEnvironment.write(satellite.configPath, original)
        child.signal(SIGHUP)
        for _ in 0..<50 {
            log = TestEnvironment.read(satellite.logPath) ?? ""
            if log.contains("configuration reloaded") { break }
            TestEnvironment.sleep(0.1)
        }
        #expect(log.contains("configuration reloaded"), "\(log)")
        #expect(satellite.stop() == 0, "clean exit on SIGTERM")
    }
}
