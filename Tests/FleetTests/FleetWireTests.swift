import Fleet
import JSONCoding
import Testing

@Suite struct FleetWireTests {
    /// A heartbeat as Harbor Satellite's Go agent marshals `StatusReportParams`.
    static let goHeartbeat = """
        {"name":"edge-01","activity":"synced 2 images","state_report_interval":"@every 00h00m30s",\
        "latest_state_digest":"sha256:aa","latest_config_digest":"","memory_used_bytes":18446744073709551615,\
        "storage_used_bytes":123,"cpu_percent":1.25,"request_created_time":"2026-12-05T09:30:00.123456789Z",\
        "last_sync_duration_ms":1500,"image_count":1,"cached_images":[{"reference":"library/nginx:1.27","size_bytes":5000000000}]}
        """

    @Test func heartbeatFromGoAgent() throws {
        let beat = try JSONCoder.decode(Heartbeat.self, from: Array(Self.goHeartbeat.utf8))
        #expect(beat.name == "edge-01")
        #expect(beat.memoryUsedBytes == UInt64.max)
        #expect(beat.cpuPercent == 1.25)
        #expect(beat.cachedImages == [CachedImage(reference: "library/nginx:1.27", sizeBytes: 5_000_000_000)])
        let again = try JSONCoder.decode(Heartbeat.self, from: try JSONCoder.encode(beat))
        #expect(again == beat)
    }

    @Test func heartbeatWritesEveryField() throws {
        let json = try JSON.parse(try JSONCoder.encode(Heartbeat(name: "edge-01")))
        for key in [
            "name", "activity", "state_report_interval", "latest_state_digest", "latest_config_digest",
            "memory_used_bytes", "storage_used_bytes", "cpu_percent", "request_created_time",
            "last_sync_duration_ms", "image_count", "cached_images",
        ] {
            #expect(json[key] != nil, "missing \(key)")
        }
    }

    @Test func sparseHeartbeatTakesZeroValues() throws {
        let beat = try JSONCoder.decode(Heartbeat.self, from: Array(#"{"name":"x"}"#.utf8))
        #expect(beat == Heartbeat(name: "x"))
    }

    @Test(arguments: [
        (#"{}"#, false),
        (#"{"events":[],"actions":[]}"#, false),
        (#"{"events":["refresh_credentials"],"actions":[]}"#, true),
        (#"{"events":[],"actions":[{"type":"refresh_credentials"}]}"#, true),
        (#"{"actions":[{"action":"refresh_credentials","message":"expires in 2h"}]}"#, true),
        (#"{"events":[{"name":"state_changed"}]}"#, false),
    ])
    func heartbeatReply(text: String, refresh: Bool) throws {
        let reply = try JSONCoder.decode(HeartbeatReply.self, from: Array(text.utf8))
        #expect(reply.asksForCredentialRefresh == refresh)
    }

    @Test func replyInstructionWithoutTypeIsRefused() {
        #expect(throws: (any Error).self) {
            try JSONCoder.decode(HeartbeatReply.self, from: Array(#"{"events":[{"message":"x"}]}"#.utf8))
        }
    }

    @Test func ztrResult() throws {
        let text = #"{"state":"https://h.example/satellite/satellite-state/edge-01/state:latest","auth":{"url":"https://h.example","username":"robot$edge-01","password":"s3"}}"#
        let result = try JSONCoder.decode(ZTRResult.self, from: Array(text.utf8))
        #expect(result.isComplete)
        #expect(FleetNames.satelliteName(inStateReference: result.state) == "edge-01")
        let partial = try JSONCoder.decode(ZTRResult.self, from: Array(#"{"state":"x","auth":{}}"#.utf8))
        #expect(!partial.isComplete)
    }

    @Test func stateDocumentsOmitEmptyFieldsAsGoDoes() throws {
        let group = GroupState(
            group: "ships", registry: "https://h.example",
            artifacts: [GroupArtifact(repository: "library/nginx", tag: ["1.27"], digest: "sha256:ab")])
        #expect(
            String(decoding: try JSONCoder.encode(group), as: UTF8.self)
                == #"{"group":"ships","registry":"https://h.example","artifacts":[{"repository":"library/nginx","tag":["1.27"],"type":"IMAGE","digest":"sha256:ab"}]}"#
        )
        let satellite = SatelliteState(states: [], config: "")
        #expect(try JSONCoder.encode(satellite) == Array("{}".utf8))
        let decoded = try JSONCoder.decode(
            GroupState.self, from: Array(#"{"artifacts":[{"repository":"a","labels":null,"deleted":true}]}"#.utf8))
        #expect(decoded.artifacts.first?.isWantedImage == false)
        #expect(decoded.artifacts.first?.labels == nil)
    }

    @Test func configStateKeepsUnknownKeys() throws {
        let text = #"{"state_config":{},"app_config":{"heartbeat_interval":"@every 00h00m10s","log_level":"debug","future":1},"satellite_lite":{"sync":{"bandwidth":"1MB/s"}}}"#
        let config = try JSONCoder.decode(ConfigState.self, from: Array(text.utf8))
        #expect(config.app.heartbeatInterval == "@every 00h00m10s")
        #expect(config.app.logLevel == "debug")
        #expect(config.app.stateReplicationInterval == nil)
        #expect(config.appConfig?["future"] == .number("1"))
        #expect(config.satelliteLite?["sync"]?["bandwidth"] == .string("1MB/s"))
    }

    @Test(arguments: [
        ("@every 00h00m30s", 30.0), ("@every 5m", 300.0), ("@every 1h30m", 5400.0), ("@every 1.5s", 1.5),
        ("@every 250ms", 0.25),
    ])
    func everyInterval(text: String, seconds: Double) {
        #expect(EveryInterval.seconds(text) == seconds)
    }

    @Test(arguments: ["5m", "@every", "@every 0s", "@every -5s", "@every 5x", "@every s", "@every 1e3s", ""])
    func badEveryInterval(text: String) {
        #expect(EveryInterval.seconds(text) == nil)
    }

    @Test func everyIntervalFormat() {
        #expect(EveryInterval.format(seconds: 30) == "@every 00h00m30s")
        #expect(EveryInterval.format(seconds: 3 * 3600 + 61) == "@every 03h01m01s")
    }

    @Test(arguments: [
        ("edge-01", true), ("ships", true), ("a.b_c__d---e", true), ("Edge", false), ("-a", false), ("a-", false),
        ("a..b", false), ("a___b", false), ("a/b", false), ("", false), (String(repeating: "a", count: 64), false),
        ("../x", false), ("a b", false),
    ])
    func names(name: String, valid: Bool) {
        #expect(FleetNames.isValid(name) == valid)
    }

    @Test func references() {
        #expect(
            FleetNames.reference(registryURL: "https://h.example/", repository: FleetNames.groupStateRepository("ships"))
                == "https://h.example/satellite/group-state/ships/state:latest")
        #expect(FleetNames.satelliteName(inStateReference: "h.example/satellite/satellite-state/../state:latest") == nil)
    }
}
