import FoundationEssentials
import SatelliteConfig
import Testing

@testable import Hooks
@testable import RuntimeConfig
import OCICore

@Suite struct HookEventTests {
    @Test(arguments: [
        ("factory/*", "factory/sensor", "1.0", true),
        ("factory/*", "factory/line/sensor", "1.0", true),
        ("factory/*", "library/nginx", "1.27", false),
        ("library/nginx:1.*", "library/nginx", "1.27", true),
        ("library/nginx:1.*", "library/nginx", "2.0", false),
        ("*:latest", "a/b", "latest", true),
        ("*:latest", "a/b", "v1", false),
        ("library/nginx", "library/nginx", "1.27", true),
        ("nginx", "library/nginx", "1.27", false),
        ("factory/sensor-[ab]", "factory/sensor-b", "1", true),
        ("factory/sensor-?", "factory/sensor-c", "1", true),
    ])
    func matchIsAGlobOnRepositoryAndImage(pattern: String, repository: String, tag: String, expected: Bool) {
        let event = HookEvent(kind: .imageUpdated, repository: repository, tag: tag, digest: "sha256:1")
        #expect(event.triggers(Helpers.hook(.imageUpdated, "true", match: pattern)) == expected)
    }

    @Test func eventNameMustMatchAndMatchIsIgnoredWithoutAnImage() {
        let updated = HookEvent(kind: .imageUpdated, repository: "a/b", tag: "1")
        #expect(!updated.triggers(Helpers.hook(.imageRemoved, "true")))
        #expect(updated.triggers(Helpers.hook(.imageUpdated, "true")))
        let sync = HookEvent(kind: .syncCompleted)
        #expect(sync.triggers(Helpers.hook(.syncCompleted, "true", match: "factory/*")))
        #expect(sync.image == "")
    }

    @Test func imageSpellings() {
        #expect(HookEvent(kind: .imageUpdated, repository: "a/b", tag: "1").image == "a/b:1")
        #expect(HookEvent(kind: .imageUpdated, repository: "a/b", digest: "sha256:ff").image == "a/b@sha256:ff")
        let pinned = HookEvent(kind: .imageUpdated, repository: "a/b", digest: "sha256:ff")
        #expect(pinned.triggers(Helpers.hook(.imageUpdated, "true", match: "a/b@sha256:*")))
    }

    @Test func eventsHaveUniqueIDsAndRoundTripThroughJSON() throws {
        let event = HookEvent(kind: .syncFailed, message: "upstream unreachable: \"timeout\"")
        #expect(event.id != HookEvent(kind: .syncFailed).id)
        let data = try JSONEncoder().encode(event)
        #expect(try JSONDecoder().decode(HookEvent.self, from: data) == event)
        #expect(String(decoding: data, as: UTF8.self).contains("\"event\":\"sync-failed\""))
    }
}
