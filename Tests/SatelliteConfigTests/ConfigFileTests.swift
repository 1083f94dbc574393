import Testing
import TestSupport
import OCICore

@testable import SatelliteConfig

@Suite struct ConfigFileTests {
    @Test func designExampleParses() throws {
        let text = """
            {
              "profile": "rpi4-arm64",
              "storage": { "path": "/var/lib/satellite-lite", "quota": "8GiB" },
              "registry": { "listen": "0.0.0.0:5000" },
              "upstream": {
                "url": "https://harbor.example.com",
                "username": "robot$edge-01",
                "passwordFile": "/etc/satellite-lite/upstream.password",
                "caFile": "/etc/satellite-lite/ca.pem",
                "insecure": false
              },
              "state": {
                "images": ["library/nginx:1.27", "factory/sensor@sha256:0000000000000000000000000000000000000000000000000000000000000000"],
                "interval": "5m"
              },
              "sync": { "bandwidth": "2MB/s", "concurrency": 2 },
              "hooks": [
                { "on": "image-updated", "match": "factory/*", "run": "systemctl restart sensor", "timeout": "60s" }
              ]
            }
            """
        let config = try ConfigFile(text: text, source: "test")
        #expect(config.profile == "rpi4-arm64")
        #expect(config.storage.quota == .bytes(8 << 30))
        #expect(config.registry.listen == ListenAddress(host: "0.0.0.0", port: 5000))
        #expect(config.upstream?.username == "robot$edge-01")
        #expect(config.state.images.count == 2)
        #expect(config.state.images[0].tag == "1.27")
        #expect(config.state.images[1].digest != nil)
        #expect(config.sync.bandwidth == 2_000_000)
        #expect(config.hooks.first?.on == .imageUpdated)
        #expect(config.hooks.first?.timeout == 60_000_000_000)
        let settings = try Settings.resolve(config, source: "test")
        #expect(settings.profile.name == "rpi4-arm64")
        #expect(settings.bandwidth == 2_000_000)
        #expect(settings.syncConcurrency == 2)
    }

    @Test(arguments: [
        (#"{"sync": {"bandwith": "2MB/s"}}"#, "sync.bandwith", "did you mean \"bandwidth\""),
        (#"{"storage": {"quota": "lots"}}"#, "storage.quota", "not a size"),
        (#"{"registry": {"listen": "localhost"}}"#, "registry.listen", "host:port"),
        (#"{"hooks": [{"on": "image-changed", "run": "true"}]}"#, "hooks[0].on", "image-updated"),
        (#"{"hooks": [{"on": "image-updated"}]}"#, "hooks[0].run", "required"),
        (#"{"upstream": {"url": "ftp://x"}}"#, "upstream.url", "http"),
        (#"{"upstream": {"url": "http://x"}, "state": {"images": ["UPPER/case"]}}"#, "state.images[0]", "repository"),
        (#"{"state": {"images": ["a:b"]}}"#, "upstream", "no upstream"),
        (#"{"sync": {"concurrency": 0}}"#, "sync.concurrency", "out of range"),
        (#"{"profile": "pi-zero-9000"}"#, "profile", "unknown profile"),
        (#"{"state": {"interval": 5}}"#, "state.interval", "duration"),
        (#"[1, 2]"#, "", "expected an object"),
        (#"{"storage": "#, "", "not valid JSON"),
        (#"{"registry": {"push": "lan"}}"#, "registry.push", "loopback, authenticated, anyone, nobody"),
        (#"{"registry": {"push": "authenticated"}}"#, "registry.users", "htpasswd"),
        (#"{"trust": {"policies": [{"match": "a/**"}]}}"#, "trust.policies[0].keys", "public key"),
        (#"{"trust": {"policies": [{"match": "a/**", "keys": ["k.pub"], "action": "deny"}]}}"#, "trust.policies[0].action", "require or warn"),
        (#"{"trust": {"policies": [{"keys": ["k.pub"]}]}}"#, "trust.policies[0].match", "factory/**"),
        (#"{"registry": {"tls": {"keyFile": "/k.pem"}}}"#, "registry.tls.certFile", "required"),
        (#"{"registry": {"tls": {"certFile": "/c.pem"}}}"#, "registry.tls.keyFile", "required"),
        (#"{"registry": {"tls": {"certFile": "/c.pem", "keyFile": "/k.pem", "handshakeTimeout": "0s"}}}"#, "registry.tls.handshakeTimeout", "between"),
        (#"{"registry": {"tls": {"certFile": "/c.pem", "keyFile": "/k.pem", "caFile": ""}}}"#, "registry.tls.caFile", "empty"),
        (#"{"registry": {"idleTimeout": "500ms"}}"#, "registry.idleTimeout", "between 1s and 24h"),
        (#"{"registry": {"idleTimeout": "2d"}}"#, "registry.idleTimeout", "0 (off)"),
        (#"{"registry": {"idleTimeout": 60}}"#, "registry.idleTimeout", "duration"),
        (#"{"registry": {"headerTimeout": "10m"}}"#, "registry.headerTimeout", "between 1s and 5m"),
    ])
    func errorsNameTheKey(text: String, path: String, fragment: String) {
        do {
            let config = try ConfigFile(text: text, source: "test.json")
            _ = try Settings.resolve(config, source: "test.json")
            Issue.record("accepted \(text)")
        } catch let error as ConfigError {
            #expect(error.path == path)
            #expect(error.description.contains(fragment), "\(error)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func pushAndTrustKeys() throws {
        #expect(try ConfigFile(text: "{}", source: "t").registry.push == .loopback)
        let config = try ConfigFile(
            text: #"{"registry": {"push": "authenticated", "users": "/etc/htpasswd"}, "trust": {"policies": [{"match": "factory/**", "keys": ["/k.pub"], "action": "warn"}]}}"#,
            source: "t")
        #expect(config.registry.push == .authenticated)
        #expect(config.registry.users == "/etc/htpasswd")
        #expect(config.trust.policies == [.init(match: "factory/**", keys: ["/k.pub"], action: "warn")])
    }

    @Test func registryTLS() throws {
        let plain = try ConfigFile(text: "{}", source: "t")
        #expect(plain.registry.tls == nil)
        let selfSigned = try ConfigFile(text: #"{"registry": {"tls": {"certFile": "/c.pem", "keyFile": "/k.pem"}}}"#, source: "t")
        #expect(selfSigned.registry.tls == .init(certFile: "/c.pem", keyFile: "/k.pem"))
        #expect(selfSigned.registry.tls?.clientCAFile == "/c.pem")
        #expect(selfSigned.registry.tls?.handshakeTimeout == 10_000_000_000)
        let issued = try ConfigFile(
            text: #"{"registry": {"tls": {"certFile": "/c.pem", "keyFile": "/k.pem", "caFile": "/ca.pem", "handshakeTimeout": "3s"}}}"#, source: "t")
        #expect(issued.registry.tls?.clientCAFile == "/ca.pem")
        #expect(issued.registry.tls?.handshakeTimeout == 3_000_000_000)
    }

    @Test func connectionTimeouts() throws {
        let defaults = try ConfigFile(text: "{}", source: "t")
        #expect(defaults.registry.idleTimeout == 60_000_000_000)
        #expect(defaults.registry.headerTimeout == 10_000_000_000)
        let set = try ConfigFile(text: #"{"registry": {"idleTimeout": "2m", "headerTimeout": "0"}}"#, source: "t")
        #expect(set.registry.idleTimeout == 120_000_000_000)
        #expect(set.registry.headerTimeout == 0)
        #expect(try ConfigFile(text: #"{"registry": {"idleTimeout": "0s"}}"#, source: "t").registry.idleTimeout == 0)
    }

    @Test func listenAddresses() {
        #expect(ListenAddress("[::1]:5000") == ListenAddress(host: "::1", port: 5000))
        #expect(ListenAddress(":5000") == ListenAddress(host: "0.0.0.0", port: 5000))
        #expect(ListenAddress("host:99999") == nil)
    }

    @Test func embeddedDefault() throws {
        let settings = try Settings.resolve(.embeddedDefault, source: "embedded default")
        #expect(settings.config.storage.path == "./satellite-data")
        #expect(settings.config.registry.listen.description == "127.0.0.1:5000")
        #expect(settings.config.upstream == nil)
    }
}
