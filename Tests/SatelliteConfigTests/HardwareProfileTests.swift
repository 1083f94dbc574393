import Testing
import TestSupport

@testable import SatelliteConfig

@Suite struct HardwareProfileTests {
    /// The binary carries hw-profiles/ verbatim: regenerate with scripts/embed-profiles.
    @Test func embeddedProfilesMatchTheFiles() throws {
        let listing = try Subprocess.run(["sh", "-c", "ls \(TestEnvironment.repositoryRoot)/hw-profiles/*.json"])
        let files = listing.output.split(separator: "\n").map(String.init).sorted()
        #expect(!files.isEmpty)
        #expect(files.count == EmbeddedProfiles.documents.count, "run scripts/embed-profiles")
        for file in files {
            let name = String(file.split(separator: "/").last?.dropLast(5) ?? "")
            let embedded = EmbeddedProfiles.documents.first { $0.0 == name }?.1
            let text = TestEnvironment.read(file) ?? ""
            #expect(embedded.map { $0 + "\n" } == text, "\(name) differs from its file: run scripts/embed-profiles")
            let profile = try HardwareProfile(text: text, source: file)
            #expect(profile.name == name)
        }
        #expect(HardwareProfile.builtIn.count == files.count)
    }

    @Test func detection() throws {
        let profiles = HardwareProfile.builtIn
        let pi = ProfileDetection.detect(
            facts: .init(machine: "aarch64", model: "Raspberry Pi 4 Model B Rev 1.4", memory: 4 << 30), profiles: profiles)
        #expect(pi.profile.name == "rpi4-arm64")
        #expect(pi.reason.contains("model"))
        let pc = ProfileDetection.detect(facts: .init(machine: "x86_64", model: nil, memory: 8 << 30), profiles: profiles)
        #expect(pc.profile.name == "generic-amd64")
        let cases: [(String, String, Int64, String)] = [
            ("aarch64", "Raspberry Pi Zero 2 W Rev 1.0", 512 << 20, "rpi-zero2w-arm64"),
            ("armv7l", "Raspberry Pi 3 Model B Plus Rev 1.3", 1 << 30, "rpi3-armv7"),
            ("armv7l", "TI AM335x BeagleBone Black", 512 << 20, "bbb-armv7"),
            ("aarch64", "FSL i.MX8MM EVK board", 2 << 30, "imx8mm-arm64"),
            ("aarch64", "NVIDIA Jetson Orin Nano Developer Kit", 8 << 30, "jetson-orin-nano-arm64"),
        ]
        for (machine, model, memory, expected) in cases {
            let detected = ProfileDetection.detect(facts: .init(machine: machine, model: model, memory: memory), profiles: profiles)
            #expect(detected.profile.name == expected, "\(model)")
        }
    }

    @Test func profileErrorsNameTheKey() {
        #expect(throws: ConfigError.self) {
            try HardwareProfile(text: #"{"name": "x"}"#, source: "x.json")
        }
    }
}
