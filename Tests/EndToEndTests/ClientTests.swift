import Testing
import TestSupport

/// Real peers against the real binary, driven by the scripts in Tests/e2e (which also run by
/// hand: each takes the binary or a registry address). One at a time: several of them time
/// kills or measure rates, which two cores shared with a parallel test would distort.
@Suite(.serialized) struct EndToEnd {
    static let scripts = "\(TestEnvironment.repositoryRoot)/Tests/e2e"

    static func run(_ name: String, _ arguments: [String], environment: [String: String] = [:], timeout: Int = 300) throws {
        let result = try Subprocess.run(["\(scripts)/\(name)"] + arguments, environment: environment, timeout: timeout)
        #expect(result.status == 0, "\(name): \(result)")
    }

    /// skopeo, podman and containerd (through a hosts.toml mirror) against the registry.
    @Suite struct Clients {
        @Test func skopeoRoundTripIsByteIdentical() throws {
            let satellite = try SatelliteProcess()
            try EndToEnd.run("skopeo_roundtrip.sh", [satellite.address])
            #expect(satellite.stop() == 0, "graceful stop on SIGTERM")
        }

        @Test func podmanPulls() throws {
            let satellite = try SatelliteProcess()
            try EndToEnd.run("podman_pull.sh", [satellite.address])
        }

        @Test func containerdPullsThroughAHostsTomlMirror() throws {
            let satellite = try SatelliteProcess()
            try EndToEnd.run("ctr_mirror_pull.sh", [satellite.address])
        }
    }

    /// Hostile requests and kill -9 during pushes.
    @Suite struct Robustness {
        @Test func hostileInputGetsClearErrorsAndChangesNothingOutsideTheStore() throws {
            try EndToEnd.run("hostile.sh", ["--bin", TestEnvironment.binary])
        }

        @Test func pushAuthorisationFromANamespaceAndDesiredTagsRefused() throws {
            try EndToEnd.run("push_auth.sh", [TestEnvironment.binary])
        }

        @Test func tlsListenerServesSkopeoWithTheCAAndClosesPlainHTTP() throws {
            try EndToEnd.run("tls_listener.sh", [TestEnvironment.binary])
        }

        @Test func runOverTLSSyncsProxiesStreamsBigBlobsAndReloadsUsers() throws {
            try EndToEnd.run("tls_run.sh", [TestEnvironment.binary])
        }

        @Test func runtimeConfigInstallsTheCAAndCtrPodmanSkopeoPullOverTLS() throws {
            try EndToEnd.run("tls_runtime_config.sh", [TestEnvironment.binary])
        }

        @Test func killDuringPushesLeavesOnlyVerifiedBlobs() throws {
            try EndToEnd.run("crash_push.sh", [TestEnvironment.binary], environment: ["ROUNDS": "6"], timeout: 600)
        }
    }

    /// Sync against Debian's docker-registry: auth modes, multi-arch, Harbor state artifacts,
    /// and faults through a loopback proxy.
    @Suite struct Sync {
        @Test func anonymousBasicAndTokenAuthMultiArchRetagAndRemoval() throws {
            try EndToEnd.run("sync_basic.sh", [TestEnvironment.binary])
        }

        @Test func signedImagesSyncUnsignedForgedAndReplayedAreRefused() throws {
            try EndToEnd.run("trust_sync.sh", [TestEnvironment.binary])
        }

        @Test func harborSatelliteStateArtifacts() throws {
            try EndToEnd.run("sync_harbor_state.sh", [TestEnvironment.binary])
        }

        @Test func cutsStallsRefusalsIgnoredRangesCorruptionKillAndBandwidth() throws {
            try EndToEnd.run("sync_faults.sh", [TestEnvironment.binary], timeout: 600)
        }

        @Test func noWANByteOutsideTheWindowPauseAtItsEndAndResumeInTheNext() throws {
            try EndToEnd.run("wan_window.sh", [TestEnvironment.binary], timeout: 180)
        }

        @Test func budgetStopsAtTheLimitRenewsNextDayAndSurvivesKill() throws {
            try EndToEnd.run("wan_budget.sh", [TestEnvironment.binary], timeout: 180)
        }
    }

    /// Quota, LRU, GC online and under kill -9, verify, ENOSPC; and a runtime pulling through
    /// the generated mirror config with the upstream gone.
    @Suite struct Lifecycle {
        @Test func quotaLRUGarbageCollectionVerifyAndFullDisk() throws {
            try EndToEnd.run("store_lifecycle.sh", [TestEnvironment.binary], timeout: 600)
        }

        /// Issue 10: what the agent stopped wanting is evictable at once under the quota
        /// (a desired-state switch, a tag updated every few seconds while clients pull).
        @Test func releasedContentMakesRoomAtOnce() throws {
            try EndToEnd.run("quota_released.sh", [TestEnvironment.binary], timeout: 600)
        }

        @Test func containerdPullsThroughRuntimeConfigWithTheUpstreamDown() throws {
            try EndToEnd.run("containerd_runtime_config.sh", [TestEnvironment.binary])
        }
    }

    /// Unattended operation: the systemd notify protocol (READY, watchdog, STOPPING) and the unit.
    @Suite struct Unattended {
        @Test func systemdNotifyWatchdogAndUnit() throws {
            try EndToEnd.run("systemd_notify.sh", [TestEnvironment.binary])
        }

        @Test func metricsFollowSyncRequestsGCAndHooks() throws {
            try EndToEnd.run("metrics.sh", [TestEnvironment.binary])
        }

        /// README's five-minute walk-through, as a new user runs it.
        @Test func readmeWalkthrough() throws {
            try EndToEnd.run("readme_walkthrough.sh", [TestEnvironment.binary])
        }
    }

    /// Issue 15: signed, differential air-gap bundles from a docker-registry upstream to a
    /// satellite without one; containerd and skopeo as the readers.
    @Suite struct AirGap {
        @Test func bundlesCreatedImportedRefusedDifferentialAndKilled() throws {
            try EndToEnd.run("bundle_airgap.sh", [TestEnvironment.binary])
        }

        @Test func watchFolderImportsOnceAndReportsBadBundles() throws {
            try EndToEnd.run("bundle_watch.sh", [TestEnvironment.binary])
        }
    }
}
