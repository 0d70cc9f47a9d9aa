// The arithmetic every bench number goes through: percentiles as numpy interpolates them, the
// rotating run order, the per-repetition ratios and targets of a small emulator run.
import Foundation
import Testing
import VFIOMigration
import VFIOMockDevices

@Suite struct BenchStatisticsTests {
    @Test func percentilesInterpolateBetweenRanks() {
        let values = [4.0, 1, 3, 2]
        #expect(BenchStatistics.percentile(25, of: values) == 1.75)
        #expect(BenchStatistics.median(values) == 2.5)
        #expect(BenchStatistics.percentile(90, of: values)! > 3.69 && BenchStatistics.percentile(90, of: values)! < 3.71)
        #expect(BenchStatistics.percentile(0, of: values) == 1)
        #expect(BenchStatistics.percentile(100, of: values) == 4)
        #expect(BenchStatistics.median([7]) == 7)
        #expect(BenchStatistics.median([]) == nil)
    }

    @Test func everyVariantRunsInEveryPosition() {
        let variants = ["a", "b", "c"]
        var positions: [String: Set<Int>] = [:]
        for repetition in 0..<6 {
            let order = BenchStatistics.order(variants, repetition: repetition)
            #expect(order.sorted() == variants, "each repetition runs every variant once")
            for (i, v) in order.enumerated() { positions[v, default: []].insert(i) }
        }
        for v in variants { #expect(positions[v] == [0, 1, 2], "\(v) ran only in \(positions[v] ?? [])") }
        // Reversed every other round of rotations: b does not always follow a.
        let follows = (0..<6).map { BenchStatistics.order(variants, repetition: $0) }.filter { $0.firstIndex(of: "b")! == $0.firstIndex(of: "a")! + 1 }
        #expect(follows.count < 6)
    }

    @Test func targetsCompareTheWayTheySay() {
        #expect(BenchTarget(.atLeast, 0.9, origin: "t").isMet(by: 0.9))
        #expect(!BenchTarget(.atLeast, 0.9, origin: "t").isMet(by: 0.899))
        #expect(BenchTarget(.atMost, 0.5, origin: "t").isMet(by: 0.5))
        #expect(!BenchTarget(.atMost, 0.5, origin: "t").isMet(by: 0.51))
        #expect("\(BenchTarget(.atLeast, 0.97, origin: "t"))" == "≥ 0.97")
    }

    @Test func anOperatorsBoundParses() throws {
        let at = try #require(BenchTarget.parse("loopback.4>=0.95"))
        #expect(at.id == "loopback.4" && at.target == BenchTarget(.atLeast, 0.95, origin: "--expect"))
        let below = try #require(BenchTarget.parse(" codec.frame/read <= 0.4 "))
        #expect(below.id == "codec.frame/read" && below.target.relation == .atMost && below.target.value == 0.4)
        for bad in ["loopback.4", ">=1", "x>=", "x>=nan", "x>=inf", "x=1", "x>=1e"] { #expect(BenchTarget.parse(bad) == nil, "\(bad)") }
    }

    @Test func thePagesSectionMeasuresTheEnginesRecordsAgainstAMemcpy() throws {
        let env = DeviceEnvironment.withMockDevices()
        let factory: BenchDeviceFactory = { r throws(VFIOError) in try env.open("mock:\(r.name)?state=\(r.stateBytes)&source=fast") }
        var options = EmulatorBenchOptions(repetitions: 1, scratchDirectory: FileManager.default.temporaryDirectory.path, sections: [.pages])
        options.pageRegionBytes = 4 << 20
        let report = try EmulatorBenchmark(options: options, devices: factory).run()
        #expect(report.rows.map(\.id) == ["pages.engine", "pages.engine.live", "pages.stream", "pages.memcpy"])
        #expect(Set(report.ratios.map(\.id)) == ["pages.engine/memcpy", "pages.engine.live/memcpy", "pages.stream/memcpy"])
        #expect(report.ratios.allSatisfy { $0.median > 0 && $0.median.isFinite })
    }

    /// A run of every section but TLS at tiny sizes: each ratio is recomputed from its rows.
    @Test func ratiosAreTheMediansOfThePerRepetitionRatiosOfTheirRows() throws {
        let env = DeviceEnvironment.withMockDevices()
        let factory: BenchDeviceFactory = { r throws(VFIOError) in
            try env.open("mock:\(r.name)?state=\(r.stateBytes)&source=fast&flags=stop-copy\(r.p2p ? ",p2p" : "")")
        }
        let scratch = FileManager.default.temporaryDirectory.path
        var options = EmulatorBenchOptions(
            stateBytes: 4 << 20, loopbackBytes: 4 << 20, chunkSize: 1 << 20, repetitions: 3, channelCounts: [1, 2], scratchDirectory: scratch,
            sections: [.codec, .save, .load, .loopback])
        options.codecIterations = 2
        let report = try EmulatorBenchmark(options: options, devices: factory).run()
        #expect(Set(report.rows.map(\.section)) == [.codec, .save, .load, .loopback])
        for row in report.rows {
            #expect(row.seconds.count == 3 && row.cpuSeconds.count == 3, "\(row.id)")
            #expect(row.seconds.allSatisfy { $0 > 0 }, "\(row.id)")
        }
        let saved = try #require(report.row("save.null.engine"))
        #expect(saved.bytes == 4 << 20)
        for ratio in report.ratios {
            let of = try #require(report.row(ratio.of)), over = try #require(report.row(ratio.over))
            let cost = ratio.id.hasPrefix("codec.")
            let expected = zip(of.seconds, over.seconds).map { a, b in
                cost ? (a / Double(of.bytes)) / (b / Double(over.bytes)) : (Double(of.bytes) / a) / (Double(over.bytes) / b)
            }
            #expect(ratio.values == expected, "\(ratio.id)")
            #expect(ratio.median == BenchStatistics.median(expected), "\(ratio.id)")
            #expect(ratio.met == ratio.target.map { $0.isMet(by: ratio.median) }, "\(ratio.id)")
        }
        #expect(report.ratios.contains { $0.id == "loopback.2" && $0.target == BenchTarget(.atLeast, 0.9, origin: "issue 10") })
        #expect(report.ratios.contains { $0.id == "save.null" && $0.target?.value == 0.97 })
        #expect(report.missed == report.ratios.filter { $0.met == false })
    }
}
