import Testing
import TestSupport
import OCICore

@testable import SatelliteConfig

@Suite struct ConfigFileProxyTests {
    @Test func designExampleParses() throws {
        let config = try ConfigFile(
            text: """
                {
                  "upstream": { "url": "https://harbor.example.com" },
                  "proxy": {
                    "enabled": true,
                    "allow": ["library/**", "factory/**"],
                    "tagRecheck": "5m",
                    "mirrors": [ { "registry": "docker.io", "url": "https://registry-1.docker.io" } ]
                  }
                }
                """, source: "t")
        #expect(config.proxy.enabled)
        #expect(config.proxy.allow == ["library/**", "factory/**"])
        #expect(config.proxy.tagRecheck == 300_000_000_000)
        #expect(config.proxy.mirrors == [ConfigFile.Proxy.Mirror(registry: "docker.io", url: "https://registry-1.docker.io")])
    }

    @Test func offByDefault() throws {
        #expect(try ConfigFile(text: "{}", source: "t").proxy.enabled == false)
    }

    @Test func mirrorsAloneNeedNoUpstream() throws {
        let config = try ConfigFile(
            text: #"{"proxy": {"mirrors": [{"registry": "quay.io", "url": "https://quay.io", "username": "u", "passwordFile": "/p"}]}}"#,
            source: "t")
        #expect(config.proxy.enabled)
        #expect(config.proxy.mirrors.first?.username == "u")
    }

    @Test(arguments: [
        (#"{"proxy": {"enabled": true}}"#, "proxy"),
        (#"{"upstream": {"url": "http://u:5000"}, "proxy": {"allow": [""]}}"#, "proxy.allow[0]"),
        (#"{"upstream": {"url": "http://u:5000"}, "proxy": {"tagRecheck": "soon"}}"#, "proxy.tagRecheck"),
        (#"{"proxy": {"mirrors": [{"registry": "dockerhub", "url": "https://x.io"}]}}"#, "proxy.mirrors[0].registry"),
        (#"{"proxy": {"mirrors": [{"registry": "Docker.IO", "url": "https://x.io"}]}}"#, "proxy.mirrors[0].registry"),
        (#"{"proxy": {"mirrors": [{"registry": "docker.io", "url": "ftp://x.io"}]}}"#, "proxy.mirrors[0].url"),
        (#"{"proxy": {"mirrors": [{"registry": "docker.io", "url": "https://a.io"}, {"registry": "docker.io", "url": "https://b.io"}]}}"#, "proxy.mirrors[1].registry"),
        (#"{"proxy": {"mirrors": [{"registry": "docker.io", "url": "https://a.io", "passwordFile": "/p"}]}}"#, "proxy.mirrors[0].username"),
        (#"{"proxy": {"mirrors": [{"registry": "docker.io", "url": "https://a.io", "ns": "x"}]}}"#, "proxy.mirrors[0].ns"),
        (#"{"upstream": {"url": "http://u:5000"}, "proxy": {"enable": true}}"#, "proxy.enable"),
    ])
    func badKeysNameTheirPath(text: String, path: String) throws {
        let error = #expect(throws: ConfigError.self) { try ConfigFile(text: text, source: "t") }
        #expect(error?.path == path, "\(String(describing: error))")
    }

    @Test(arguments: [("docker.io", true), ("localhost", true), ("registry:5000", true), ("quay.io:443", true),
        ("library", false), ("a..b", false), ("-a.io", false), ("a.io:0", false), ("a.io/x", false), ("", false)])
    func registryNames(name: String, valid: Bool) {
        #expect(ConfigFile.isRegistryName(name) == valid)
    }

    @Test func profileProxySectionIsOptional() throws {
        let profile = try #require(HardwareProfile.named("rpi4-arm64"))
        #expect(profile.proxy.continueUnwatched)
    }
}
