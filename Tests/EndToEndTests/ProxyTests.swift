import Testing
import TestSupport

extension EndToEnd {
    /// The pull-through proxy and registry mirror (issue 14) against Debian's docker-registry.
    @Suite struct Proxy {
        /// skopeo, podman (registries.conf path prefix) and containerd (hosts.toml, ?ns=) pull
        /// images outside the desired state through the proxy and a mirror, then offline.
        @Test func realClientsPullThroughTheProxyAndMirrorOnlineAndOffline() throws {
            try EndToEnd.run("proxy_pull.sh", [TestEnvironment.binary])
        }

        /// 20 concurrent clients share one upstream transfer; kill -9 mid-transfer resumes;
        /// a corrupting upstream leaves nothing visible; proxy.allow keeps the upstream out.
        @Test func coalescingResumeCorruptionAndAllowList() throws {
            try EndToEnd.run("proxy_faults.sh", [TestEnvironment.binary])
        }

        /// An upstream answering garbage (lying digests, endless bodies, wrong lengths, a
        /// redirect loop): clean OCI errors or cut responses, nothing visible.
        @Test func garbageUpstreamGetsCleanErrorsAndNothingStored() throws {
            try EndToEnd.run("proxy_garbage.sh", [TestEnvironment.binary])
        }
    }
}
