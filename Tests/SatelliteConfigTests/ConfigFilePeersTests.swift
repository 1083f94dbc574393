import Testing
import TestSupport

@testable import SatelliteConfig

@Suite struct ConfigFilePeersTests {
    @Test func designExampleParses() throws {
        let config = try ConfigFile(
            text: """
                { "peers": { "urls": ["http://10.0.0.12:5000/"], "discover": true, "secretFile": "/etc/satellite-lite/site.secret" } }
                """, source: "t")
        #expect(config.peers.urls == ["http://10.0.0.12:5000"])
        #expect(config.peers.discover)
        #expect(config.peers.secretFile == "/etc/satellite-lite/site.secret")
        #expect(config.peers.takeover == 2_000_000_000)
        #expect(config.peers.enabled)
    }

    @Test func offByDefault() throws {
        #expect(try ConfigFile(text: "{}", source: "t").peers.enabled == false)
    }

    @Test func badPeersConfigNamesTheKey() throws {
        let cases: [(String, String)] = [
            (#"{"peers": {"urls": ["http://a:5000"]}}"#, "peers.secretFile"),
            (#"{"peers": {"urls": ["ftp://a"], "secretFile": "s"}}"#, "peers.urls[0]"),
            (#"{"peers": {"discover": true, "secretFile": "s", "advertise": "10.0.0.1"}}"#, "peers.advertise"),
            (#"{"peers": {"discover": true, "secretFile": "s", "discoveryAddress": "255.255"}}"#, "peers.discoveryAddress"),
            (#"{"peers": {"discover": true, "secretFile": "s", "takeover": "0s"}}"#, "peers.takeover"),
            (#"{"peers": {"discover": true, "secretFile": "s", "discoveryPort": 0}}"#, "peers.discoveryPort"),
            (#"{"peers": {"discover": true, "secretFile": "s", "urlz": []}}"#, "peers.urlz"),
        ]
        for (text, path) in cases {
            let error = #expect(throws: ConfigError.self) { try ConfigFile(text: text, source: "t") }
            #expect(error?.path == path, "\(text)")
        }
    }
}
