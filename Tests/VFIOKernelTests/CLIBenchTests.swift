// `vfio-migrate bench` through the built binary, at sizes that take a second or two: the
// emulator's JSON valid against docs/schemas/bench.schema.json, a missed target's exit status
// and --no-fail, --device with mock devices (percentiles, every device RUNNING, a fault that
// fails a run part-way), and --report's page parsing as HTML with every SVG as XML.
import Foundation
import Testing

private let pairFlags = "flags=stop-copy,p2p,pre-copy"

@Suite(.serialized) struct CLIBenchTests {
    private func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(text.prefix(500))")
    }

    /// A small emulator run of the save and load sections only.
    private func emulator(_ extra: [String]) throws -> CLIResult {
        try CLI.run(["bench", "--only", "save", "--only", "load", "--state", "2MiB", "--chunk-size", "256KiB", "--repetitions", "2", "--scratch",
                     FileManager.default.temporaryDirectory.path] + extra)
    }

    @Test func anEmulatorRunAsJSONIsValidAndEachRatioNamesItsRows() throws {
        let result = try emulator(["--expect", "save.null>=0", "--json"])
        #expect(result.status == 0, "\(result.err)")
        try CLI.validate(result.out, against: "bench")
        let doc = try json(result.out)
        #expect(doc["mode"] as? String == "emulator")
        #expect(doc["passed"] as? Bool == true)
        let run = try #require(doc["run"] as? [String: Any])
        let rows = try #require(run["rows"] as? [[String: Any]])
        #expect(Set(rows.compactMap { $0["section"] as? String }) == ["save", "load"])
        #expect(rows.allSatisfy { ($0["seconds"] as? [Double])?.count == 2 })
        let ids = Set(rows.compactMap { $0["id"] as? String })
        let ratios = try #require(run["ratios"] as? [[String: Any]])
        #expect(Set(ratios.compactMap { $0["id"] as? String }) == ["save.null", "save.null.serial", "save.file", "save.pipe", "load.file"])
        for ratio in ratios {
            #expect(ids.contains(ratio["of"] as? String ?? "") && ids.contains(ratio["over"] as? String ?? ""), "\(ratio)")
        }
        let null = try #require(ratios.first { $0["id"] as? String == "save.null" })
        let target = try #require(null["target"] as? [String: Any])
        #expect(target["origin"] as? String == "--expect" && target["value"] as? Double == 0)
        #expect(doc["memory"] == nil, "--only save/load runs no memory check")
    }

    @Test func aMissedTargetExitsOneUnlessNoFail() throws {
        let missed = try emulator(["--only", "save", "--expect", "save.null>=1000", "--repetitions", "1"])
        #expect(missed.status == 1, "\(missed.err)")
        #expect(missed.out.contains("FAIL  framed save / raw copy → /dev/null"), "\(missed.out)")
        #expect(missed.out.contains("targets met: 0 of 1"), "\(missed.out)")
        #expect(missed.out.contains("target ≥ 1000.00  save.null\n"), "\(missed.out)")
        let tolerated = try emulator(["--expect", "save.null>=1000", "--repetitions", "1", "--no-fail", "--json"])
        #expect(tolerated.status == 0, "\(tolerated.err)")
        try CLI.validate(tolerated.out, against: "bench")
        #expect(try json(tolerated.out)["passed"] as? Bool == false)
    }

    @Test(arguments: [["--expect", "save.null"], ["--expect", ">=1"], ["--expect", "save.null>=x"], ["--only", "disk"], ["--chunk-size", "1KiB"], ["--chunk-size", "1GiB"],
                      ["--expect", "no.such.ratio>=1"]])
    func badArgumentsAreUsageErrors(_ arguments: [String]) throws {
        let result = try emulator(arguments + ["--repetitions", "1"])
        #expect(result.status == 2, "\(arguments): \(result.err)")
        #expect(result.err.contains("vfio-migrate:") || result.err.contains("Error:"), "\(result.err)")
    }

    @Test func devicesGivePercentilesAndAreLeftRunning() throws {
        let result = try CLI.run([
            "bench", "--device", "mock:a?state=1MiB&\(pairFlags)&dirty-rate=4/1MiB", "--device", "mock:b?state=512KiB&\(pairFlags)",
            "--target", "mock:c?state=1MiB&\(pairFlags)", "--target", "mock:d?state=512KiB&\(pairFlags)", "--runs", "3", "--chunk-size", "256KiB",
            "--json",
        ])
        #expect(result.status == 0, "\(result.err)")
        try CLI.validate(result.out, against: "bench")
        let run = try #require(try json(result.out)["run"] as? [String: Any])
        #expect((run["runs"] as? [Any])?.count == 3)
        #expect(run["finalStates"] as? [String: String] == ["mock:a": "RUNNING", "mock:b": "RUNNING", "mock:c": "RUNNING", "mock:d": "RUNNING"])
        let percentiles = try #require(run["percentiles"] as? [String: [String: Double]])
        for name in ["save.total", "load.total", "downtime"] {
            let p = try #require(percentiles[name], "\(name)")
            #expect(p["p25"]! <= p["p50"]! && p["p50"]! <= p["p90"]!, "\(name): \(p)")
        }
        let text = try CLI.run(["bench", "--device", "mock:a?state=256KiB", "--runs", "2", "--sink", "null"])
        #expect(text.status == 0, "\(text.err)")
        #expect(text.out.contains("p25") && text.out.contains("devices left: mock:a RUNNING"), "\(text.out)")
    }

    /// The data session of one source dies part-way through its state; a target refuses the
    /// switch back to STOP once it loaded: each run fails mid-migration, and every device,
    /// sources and targets, is RUNNING when the command exits.
    @Test(arguments: [
        ["--device", "mock:a?state=1MiB&\(pairFlags)", "--device", "mock:b?state=1MiB&\(pairFlags)&enodev-after=512KiB",
         "--target", "mock:c?state=1MiB&\(pairFlags)", "--target", "mock:d?state=1MiB&\(pairFlags)"],
        ["--device", "mock:a?state=1MiB&\(pairFlags)", "--target", "mock:c?state=1MiB&\(pairFlags)&fail-arc=RESUMING>STOP:EIO:once"],
    ])
    func aFaultMidRunLeavesEveryDeviceRunning(_ devices: [String]) throws {
        let result = try CLI.run(["bench"] + devices + ["--runs", "3", "--chunk-size", "256KiB", "--json"])
        #expect(result.status == 1, "\(result.out)\n\(result.err)")
        try CLI.validate(result.out, against: "error")
        let error = try #require(try json(result.out)["error"] as? [String: Any])
        let outcomes = try #require(error["outcomes"] as? [[String: Any]])
        let names = devices.enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element.prefix { $0 != "?" }) }
        #expect(Set(outcomes.compactMap { $0["device"] as? String }) == Set(names))
        for outcome in outcomes { #expect(outcome["finalState"] as? String == "RUNNING", "\(outcome)") }
        #expect(result.err.contains("bench stopped after 0 of 3 run(s); devices left: "), "\(result.err)")
        #expect(!result.err.contains("STOP_COPY,") && !result.err.contains("ERROR"), "\(result.err)")
    }

    /// The mock's group file opens once, as the kernel's does: the second device of group 7
    /// is refused with EBUSY, named, before anything runs.
    @Test func aBusyGroupIsRefusedSayingSo() throws {
        let result = try CLI.run(["bench", "--device", "mock:a?group=7&state=64KiB", "--device", "mock:b?group=7&state=64KiB", "--runs", "1", "--json"])
        #expect(result.status == 1, "\(result.err)")
        try CLI.validate(result.out, against: "error")
        let error = try #require(try json(result.out)["error"] as? [String: Any])
        #expect(error["device"] as? String == "mock:b?group=7&state=64KiB")
        #expect((error["message"] as? String ?? "").contains("is held by another process, or by a device opened before it"), "\(error)")
        #expect((error["message"] as? String ?? "").contains("EBUSY"), "\(error)")
        #expect(!result.err.contains("migrating"), "nothing ran: \(result.err)")
    }

    @Test func reportsParseAsHTMLWithSVGPlots() throws {
        let dir = try TempDir()
        let device = try CLI.run(["bench", "--device", "mock:a?state=1MiB&\(pairFlags)&dirty-rate=4/1MiB", "--runs", "2", "--report", dir.file("device"), "--quiet"])
        #expect(device.status == 0, "\(device.err)")
        let emulator = try emulator(["--only", "save", "--no-fail", "--quiet", "--repetitions", "1", "--report", dir.file("emulator")])
        #expect(emulator.status == 0, "\(emulator.err)")
        for (name, plots) in [("device", 1), ("emulator", 3)] {
            let page = dir.file(name) + "/index.html"
            let check = try CLI.run(executable: URL(fileURLWithPath: "/usr/bin/python3"), ["-c", Self.parser, page])
            #expect(check.status == 0, "\(name): \(check.err)")
            let svgs = Int(check.out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            #expect(svgs >= plots, "\(name): \(svgs) SVG plots")
            try CLI.validate(try String(contentsOfFile: dir.file(name) + "/bench.json", encoding: .utf8), against: "bench")
            #expect(try String(contentsOfFile: dir.file(name) + "/bench.txt", encoding: .utf8).contains("RUNNING") == (name == "device"))
            let html = try String(contentsOfFile: page, encoding: .utf8)
            let external = ["<script", "src=", "href=", "@import", "url("].filter { html.contains($0) }
            #expect(external.isEmpty, "\(name): not self-contained: \(external)")
        }
    }

    /// Parses the page with html.parser (tags balanced), then every <svg> element as XML;
    /// prints how many there were.
    private static let parser = """
        import html.parser, re, sys, xml.etree.ElementTree as ET
        text = open(sys.argv[1], encoding="utf-8").read()
        VOID = {"meta", "br", "hr", "img", "link", "input", "col", "wbr"}
        class P(html.parser.HTMLParser):
            def __init__(self):
                super().__init__(); self.stack = []
            def handle_starttag(self, tag, attrs):
                if tag not in VOID: self.stack.append(tag)
            def handle_startendtag(self, tag, attrs): pass
            def handle_endtag(self, tag):
                if not self.stack or self.stack[-1] != tag:
                    raise SystemExit(f"</{tag}> closes <{self.stack[-1] if self.stack else None}> at {self.getpos()}")
                self.stack.pop()
        p = P(); p.feed(text); p.close()
        if p.stack: raise SystemExit(f"unclosed: {p.stack}")
        svgs = re.findall(r"<svg\\b.*?</svg>", text, re.S)
        for s in svgs: ET.fromstring(s)
        print(len(svgs))
        """
}
