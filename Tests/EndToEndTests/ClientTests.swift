import Testing
import TestSupport

/// Real peers against the real binary, driven by the scripts in Tests/e2e (which also run by
/// hand: each takes the binary or a registry address). One at a time: several of them time
/// kills or measure rates, which two cores shared with a parallel test would distort.
@Suite(.serialized) struct EndToEnd {
    static let scripts = "\(TestEnvironment.repositoryRoot)/Tests/e2e"

    static func run(_ name: String, _ arguments: [String], environment: [String: String] = [:], timeout: Int = 300) async throws {
        let result = try await Subprocess.runOffPool(["\(scripts)/\(name)"] + arguments, environment: environment, timeout: timeout)
        #expect(result.status == 0, "\(name): \(result)")
    }

    /// skopeo, podman and containerd (through a hosts.toml mirror) against the registry.
    @Suite struct Clients {
        @Test func skopeoRoundTripIsByteIdentical() async throws {
            let satellite = try SatelliteProcess()
            try await EndToEnd.run("skopeo_roundtrip.sh", [satellite.address])
            #expect(satellite.stop() == 0, "graceful stop on SIGTERM")
        }

        @Test func podmanPulls() async throws {
            let satellite = try SatelliteProcess()
            try await EndToEnd.run("podman_pull.sh", [satellite.address])
        }

        @Test func containerdPullsThroughAHostsTomlMirror() async throws {
            let satellite = try SatelliteProcess()
            try await EndToEnd.run("ctr_mirror_pull.sh", [satellite.address])
        }
    }

    /// Hostile requests and kill -9 during pushes.
    @Suite struct Robustness {
        @Test func hostileInputGetsClearErrorsAndChangesNothingOutsideTheStore() async throws {
            try await EndToEnd.run("hostile.sh", ["--bin", TestEnvironment.binary])
        }

        @Test func pushAuthorisationFromANamespaceAndDesiredTagsRefused() async throws {
            try await EndToEnd.run("push_auth.sh", [TestEnvironment.binary])
        }

        @Test func tlsListenerServesSkopeoWithTheCAAndClosesPlainHTTP() async throws {
            try await EndToEnd.run("tls_listener.sh", [TestEnvironment.binary])
        }

        @Test func runOverTLSSyncsProxiesStreamsBigBlobsAndReloadsUsers() async throws {
            try await EndToEnd.run("tls_run.sh", [TestEnvironment.binary])
        }

        @Test func runtimeConfigInstallsTheCAAndCtrPodmanSkopeoPullOverTLS() async throws {
            try await EndToEnd.run("tls_runtime_config.sh", [TestEnvironment.binary])
        }

        @Test func killDuringPushesLeavesOnlyVerifiedBlobs() async throws {
            try await EndToEnd.run("crash_push.sh", [TestEnvironment.binary], environment: ["ROUNDS": "6"], timeout: 600)
        }
    }

    /// Sync against Debian's docker-registry: auth modes, multi-arch, Harbor state artifacts,
    /// and faults through a loopback proxy.
    @Suite struct Sync {
        @Test func anonymousBasicAndTokenAuthMultiArchRetagAndRemoval() async throws {
            try await EndToEnd.run("sync_basic.sh", [TestEnvironment.binary])
        }

        @Test func signedImagesSyncUnsignedForgedAndReplayedAreRefused() async throws {
            try await EndToEnd.run("trust_sync.sh", [TestEnvironment.binary])
        }

        @Test func harborSatelliteStateArtifacts() async throws {
            try await EndToEnd.run("sync_harbor_state.sh", [TestEnvironment.binary])
        }

        @Test func cutsStallsRefusalsIgnoredRangesCorruptionKillAndBandwidth() async throws {
            try await EndToEnd.run("sync_faults.sh", [TestEnvironment.binary], timeout: 600)
        }

        @Test func noWANByteOutsideTheWindowPauseAtItsEndAndResumeInTheNext() async throws {
            try await EndToEnd.run("wan_window.sh", [TestEnvironment.binary], timeout: 180)
        }

        @Test func budgetStopsAtTheLimitRenewsNextDayAndSurvivesKill() async throws {
            try await EndToEnd.run("wan_budget.sh", [TestEnvironment.binary], timeout: 180)
        }
    }

    /// Quota, LRU, GC online and under kill -9, verify, ENOSPC; and a runtime pulling through
    /// the generated mirror config with the upstream gone.
    @Suite struct Lifecycle {
        @Test func quotaLRUGarbageCollectionVerifyAndFullDisk() async throws {
            try await EndToEnd.run("store_lifecycle.sh", [TestEnvironment.binary], timeout: 600)
        }

        /// Issue 10: what the agent stopped wanting is evictable at once under the quota
        /// (a desired-state switch, a tag updated every few seconds while clients pull).
        @Test func releasedContentMakesRoomAtOnce() async throws {
            try await EndToEnd.run("quota_released.sh", [TestEnvironment.binary], timeout: 600)
        }

        @Test func containerdPullsThroughRuntimeConfigWithTheUpstreamDown() async throws {
            try await EndToEnd.run("containerd_runtime_config.sh", [TestEnvironment.binary])
        }
    }

    /// Unattended operation: the systemd notify protocol (READY, watchdog, STOPPING) and the unit.
    @Suite struct Unattended {
        @Test func systemdNotifyWatchdogAndUnit() async throws {
            try await EndToEnd.run("systemd_notify.sh", [TestEnvironment.binary])
        }

        @Test func metricsFollowSyncRequestsGCAndHooks() async throws {
            try await EndToEnd.run("metrics.sh", [TestEnvironment.binary])
        }

        /// README's five-minute walk-through, as a new user runs it.
        @Test func readmeWalkthrough() async throws {
            try await EndToEnd.run("readme_walkthrough.sh", [TestEnvironment.binary])
        }
    }

    /// Issue 15: signed, differential air-gap bundles from a docker-registry upstream to a
    /// satellite without one; containerd and skopeo as the readers.
    @Suite struct AirGap {
        @Test func bundlesCreatedImportedRefusedDifferentialAndKilled() async throws {
            try await EndToEnd.run("bundle_airgap.sh", [TestEnvironment.binary])
        }

        @Test func watchFolderImportsOnceAndReportsBadBundles() async throws {
            try await EndToEnd.run("bundle_watch.sh", [TestEnvironment.binary])
        }
    }
}
