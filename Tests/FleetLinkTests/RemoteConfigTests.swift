import Fleet
import JSONCoding
import Logging
import SatelliteConfig
import Testing

@testable import FleetLink

@Suite struct RemoteConfigTests {
    let local: JSONValue = .object([
        "storage": .object(["path": .string("/var/lib/satellite-lite")]),
        "groundControl": .object(["url": .string("http://127.0.0.1:1"), "token": .string("t")]),
    ])

    func document(_ text: String) throws -> ConfigState {
        try JSONCoder.decode(ConfigState.self, from: Array(text.utf8))
    }

    @Test func appConfigIntervalsAndOwnKeysApply() throws {
        let doc = try document(
            #"{"app_config": {"state_replication_interval": "@every 00h00m07s", "heartbeat_interval": "@every 3s", "log_level": "warn"}, "satellite_lite": {"sync": {"bandwidth": "1MB/s"}}}"#)
        let effective = try RemoteConfig.apply(doc, over: local, remoteHooks: false)
        #expect(effective.config.state.interval == 7_000_000_000)
        #expect(effective.config.groundControl?.heartbeat == 3_000_000_000)
        #expect(effective.config.sync.bandwidth == 1_000_000)
        #expect(effective.config.storage.path == "/var/lib/satellite-lite")
        #expect(effective.logLevel == .warning)
    }

    @Test(arguments: [
        #"{"satellite_lite": {"storage": {"path": "/tmp/elsewhere"}}}"#,
        #"{"satellite_lite": {"groundControl": {"url": "http://evil"}}}"#,
        #"{"satellite_lite": {"hooks": [{"on": "sync-completed", "run": "true"}]}}"#,
        #"{"satellite_lite": {"sync": {"bandwidth": "fast"}}}"#,
        #"{"satellite_lite": {"nonsense": 1}}"#,
        #"{"app_config": {"state_replication_interval": "5m"}}"#,
        #"{"app_config": {"log_level": "loud"}}"#,
        #"{"satellite_lite": [1]}"#,
    ])
    func invalidDocumentsAreRefused(text: String) throws {
        let doc = try document(text)
        #expect(throws: RemoteConfig.Refusal.self) { try RemoteConfig.apply(doc, over: local, remoteHooks: false) }
    }

    @Test func hooksOnlyWithRemoteHooks() throws {
        let doc = try document(#"{"satellite_lite": {"hooks": [{"on": "sync-completed", "run": "true"}]}}"#)
        let effective = try RemoteConfig.apply(doc, over: local, remoteHooks: true)
        #expect(effective.config.hooks.count == 1)
    }
}
