import Testing
import TestSupport

extension EndToEnd {
    /// The pull-through proxy and registry mirror (issue 14) against Debian's docker-registry.
    @Suite struct Proxy {
        /// skopeo, podman (registries.conf path prefix) and containerd (hosts.toml, ?ns=) pull
        /// images outside the desired state through the proxy and a mirror, then offline.
        @Test func realClientsPullThroughTheProxyAndMirrorOnlineAndOffline() async throws {
            try await EndToEnd.run("proxy_pull.sh", [TestEnvironment.binary])
        }

        /// 20 concurrent clients share one upstream transfer; kill -9 mid-transfer resumes;
        /// a corrupting upstream leaves nothing visible; proxy.allow keeps the upstream out.
        @Test func coalescingResumeCorruptionAndAllowList() async throws {
            try await EndToEnd.run("proxy_faults.sh", [TestEnvironment.binary])
        }

        /// An upstream answering garbage (lying digests, endless bodies, wrong lengths, a
        /// redirect loop): clean OCI errors or cut responses, nothing visible.
        @Test func garbageUpstreamGetsCleanErrorsAndNothingStored() async throws {
            try await EndToEnd.run("proxy_garbage.sh", [TestEnvironment.binary])
        }

        /// `run` puts proxy.allow, mirrors and proxy.enabled changes in effect on SIGHUP; a
        /// broken config is refused and the settings in effect stay.
        @Test func proxySettingsFollowSIGHUP() async throws {
            try await EndToEnd.run("proxy_reload.sh", [TestEnvironment.binary])
        }

        /// The proxy takes misses from the site's peers before the WAN (network namespaces, a
        /// tbf WAN whose bytes tc counts): a skopeo pull of what a peer holds moves only the
        /// manifest over the WAN; two proxies pulling one image fetch it from the WAN once (one
        /// fetches, the other follows); outside the window what a peer holds is served (0 WAN
        /// bytes); a peer killed mid-blob costs no byte twice; a lying peer is caught and the
        /// client gets the right bytes.
        @Test func missesComeFromThePeersBeforeTheWAN() async throws {
            try await EndToEnd.run("wan_proxy_peers.sh", [TestEnvironment.binary], timeout: 90)
        }
    }
}
