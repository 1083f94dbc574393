import Testing
import TestSupport
import OCICore

@testable import SatelliteConfig

@Suite struct ConfigFileWANTests {
    @Test func designExampleParses() throws {
        let config = try ConfigFile(
            text: """
                { "sync": { "windows": ["01:00-05:00", "22:30-00:15"], "budget": { "perDay": "500MB", "perMonth": "8GB" } } }
                """, source: "t")
        #expect(config.sync.windows.map(\.description) == ["01:00-05:00", "22:30-00:15"])
        #expect(config.sync.windows[0].start == 60 && config.sync.windows[0].end == 300)
        #expect(config.sync.windows[1].start == 22 * 60 + 30 && config.sync.windows[1].end == 15)
        #expect(config.sync.budget == .init(perDay: 500_000_000, perMonth: 8_000_000_000))
    }

    @Test func noKeysMeanAlwaysOpenAndUnlimited() throws {
        let config = try ConfigFile(text: "{}", source: "t")
        #expect(config.sync.windows.isEmpty)
        #expect(config.sync.budget == .init())
    }

    @Test func wholeDayAndEndOfDay() throws {
        #expect(ConfigFile.Sync.Window("00:00-24:00").map { ($0.start, $0.end) } ?? (-1, -1) == (0, 1440))
        #expect(ConfigFile.Sync.Window("18:00-24:00")?.end == 1440)
        #expect(ConfigFile.Sync.Window(" 01:00 - 05:00 ")?.start == 60)
    }

    @Test(arguments: ["01:00", "1:00-05:00", "25:00-01:00", "01:60-02:00", "24:00-01:00", "03:00-03:00", "aa:bb-cc:dd", "01:00-05:00-06:00", ""])
    func badWindowIsRefusedByName(_ text: String) throws {
        #expect(ConfigFile.Sync.Window(text) == nil)
        let error = #expect(throws: ConfigError.self) {
            try ConfigFile(text: #"{ "sync": { "windows": ["02:00-03:00", "\#(text)"] } }"#, source: "t")
        }
        #expect(error?.description.contains("sync.windows[1]") == true)
    }

    @Test func badBudgetIsRefusedByName() throws {
        let zero = #expect(throws: ConfigError.self) { try ConfigFile(text: #"{"sync":{"budget":{"perDay":"0"}}}"#, source: "t") }
        #expect(zero?.description.contains("sync.budget.perDay") == true)
        let unit = #expect(throws: ConfigError.self) { try ConfigFile(text: #"{"sync":{"budget":{"perMonth":"lots"}}}"#, source: "t") }
        #expect(unit?.description.contains("perMonth") == true)
        let typo = #expect(throws: ConfigError.self) { try ConfigFile(text: #"{"sync":{"budget":{"perWeek":"1GB"}}}"#, source: "t") }
        #expect(typo?.description.contains("perWeek") == true)
    }
}
