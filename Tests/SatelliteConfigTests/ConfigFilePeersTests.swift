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
            (#"{"peers": {"discover": true, "secretFile": "s", "caFile": ""}}"#, "peers.caFile"),
            (#"{"registry": {"listen": "0.0.0.0:5000"}, "peers": {"discover": true, "secretFile": "s"}}"#, "peers.advertise"),
            (#"{"registry": {"listen": ":5000"}, "peers": {"urls": ["http://a:5000"], "secretFile": "s"}}"#, "peers.advertise"),
            (#"{"registry": {"listen": "[::]:5000"}, "peers": {"discover": true, "secretFile": "s"}}"#, "peers.advertise"),
            (
                #"{"registry": {"tls": {"certFile": "c", "keyFile": "k"}}, "peers": {"discover": true, "secretFile": "s", "advertise": "http://10.0.0.1:5000"}}"#,
                "peers.advertise"
            ),
        ]
        for (text, path) in cases {
            let error = #expect(throws: ConfigError.self) { try ConfigFile(text: text, source: "t") }
            #expect(error?.path == path, "\(text)")
        }
    }

    /// Peers over HTTPS: https:// URLs, and the CA that verifies them defaults to the site CA
    /// of the registry's own TLS; a satellite with its own listener on TLS advertises https.
    @Test func httpsPeersTrustTheSiteCA() throws {
        let config = try ConfigFile(
            text: """
                { "registry": { "tls": { "certFile": "/c.pem", "keyFile": "/k.pem", "caFile": "/site-ca.pem" } },
                  "peers": { "urls": ["https://10.0.0.12:5000/"], "secretFile": "/s", "advertise": "https://10.0.0.11:5000" } }
                """, source: "t")
        #expect(config.peers.urls == ["https://10.0.0.12:5000"])
        #expect(config.peers.advertise == "https://10.0.0.11:5000")
        #expect(config.peers.caFile == nil)
        #expect(config.peerCAFile == "/site-ca.pem")

        let explicit = try ConfigFile(
            text: """
                { "registry": { "tls": { "certFile": "/c.pem", "keyFile": "/k.pem", "caFile": "/site-ca.pem" } },
                  "peers": { "urls": ["https://10.0.0.12:5000"], "secretFile": "/s", "caFile": "/peers-ca.pem" } }
                """, source: "t")
        #expect(explicit.peerCAFile == "/peers-ca.pem")

        // A self-signed listener (no registry.tls.caFile): its own leaf verifies no other
        // peer, so peers fall back to the system's CAs unless peers.caFile names the bundle.
        let selfSigned = try ConfigFile(
            text: """
                { "registry": { "tls": { "certFile": "/c.pem", "keyFile": "/k.pem" } },
                  "peers": { "urls": ["https://10.0.0.12:5000"], "secretFile": "/s" } }
                """, source: "t")
        #expect(selfSigned.peerCAFile == nil)
        #expect(try ConfigFile(text: #"{"peers": {"discover": true, "secretFile": "s"}}"#, source: "t").peerCAFile == nil)
    }
}
