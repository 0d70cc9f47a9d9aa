// What people expect of the tool: progress on a terminal and a summary elsewhere, --quiet,
// logging levels, --verbose failures, sizes and durations for people, help with examples,
// completions, and the man page in docs/.
import Foundation
import Testing

@Suite struct CLIBehaviourTests {
    @Test func progressIsOneSummaryLineOffATerminalAndNothingWhenQuiet() throws {
        let dir = try TempDir()
        let save = try CLI.run(["save", "mock:a?state=4MiB", "-o", dir.file("a.vfiomig")])
        #expect(save.status == 0)
        let lines = save.err.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("saved 1 device(s): 4."), "\(save.err)")
        #expect(!save.err.contains("\u{1B}"))
        let quiet = try CLI.run(["save", "mock:a?state=4MiB", "-o", dir.file("b.vfiomig"), "--quiet"])
        #expect(quiet.status == 0 && quiet.err.isEmpty, "\(quiet.err)")
        let load = try CLI.run(["load", "mock:t?state=4MiB", "-i", dir.file("a.vfiomig")])
        #expect(load.err.hasPrefix("loaded 1 device(s): 4."), "\(load.err)")
    }

    @Test func onATerminalProgressIsDrawnPerDevice() throws {
        let dir = try TempDir()
        let log = dir.file("typescript")
        // script(1) gives the command a terminal; its transcript holds what was drawn.
        let command = [CLI.binary.path, "save", "mock:a?state=32MiB", "mock:b?state=32MiB", "-o", dir.file("t.vfiomig")]
            .map { "'\($0)'" }.joined(separator: " ")
        let result = try CLI.run(executable: URL(fileURLWithPath: "/usr/bin/script"), ["-qec", command, log])
        #expect(result.status == 0, "\(result.err)")
        let drawn = try String(contentsOfFile: log, encoding: .utf8)
        #expect(drawn.contains("\u{1B}[2K"), "live lines are redrawn")
        #expect(drawn.contains("saving: "), "\(drawn.prefix(400))")
        #expect(drawn.contains("mock:a") && drawn.contains("mock:b"))
        #expect(drawn.contains("saved 2 device(s)"))
    }

    @Test func logLevelsAndVerbose() throws {
        let quietByDefault = try CLI.run(["list", "mock:a"])
        #expect(!quietByDefault.err.contains("vfio-migrate: info:"))
        let info = try CLI.run(["list", "mock:a", "--log-level", "info"])
        #expect(info.err.contains("vfio-migrate: info: listed 1 device(s)"), "\(info.err)")
        let verbose = try CLI.run(["list", "mock:a", "--verbose"])
        #expect(verbose.err.contains("vfio-migrate: info:"))
        #expect(try CLI.run(["list", "--log-level", "loud"]).status == 2)
        // --verbose adds every outcome and the call to a failure's one line.
        let failed = try CLI.run(["save", "mock:a?state=1MiB", "-o", "/dev/full", "--verbose"])
        #expect(failed.status == 1)
        #expect(failed.err.contains("  errno: ENOSPC"), "\(failed.err)")
        #expect(failed.err.contains("  outcome: source mock:a: RUNNING"), "\(failed.err)")
        let plain = try CLI.run(["save", "mock:a?state=1MiB", "-o", "/dev/full"])
        #expect(plain.err.split(separator: "\n").count == 1, "\(plain.err)")
    }

    @Test func sizesAndDurationsAreForPeople() throws {
        let dir = try TempDir()
        let save = try CLI.run(["save", "mock:a?state=1536KiB", "-o", dir.file("a.vfiomig")])
        #expect(save.out.range(of: #"mock:a: 1\.[0-9]{2} MiB in [0-9]+ chunks"#, options: .regularExpression) != nil, "\(save.out)")
        let downtime = try #require(save.out.split(separator: "\n").first { $0.contains("downtime") })
        #expect(downtime.contains(" µs") || downtime.contains(" ms") || downtime.hasSuffix(" s"), "\(downtime)")
        #expect(downtime.range(of: #"downtime [0-9.]+ (µs|ms|s)$"#, options: .regularExpression) != nil, "\(downtime)")
    }

    @Test func everyCommandsHelpHasExamples() throws {
        for command in ["list", "probe", "target-spec", "save", "load", "inspect", "verify", "compat", "replay", "demo"] {
            let help = try CLI.run([command, "--help"])
            #expect(help.status == 0, "\(command)")
            #expect(help.out.contains("Examples:") && help.out.contains("vfio-migrate \(command == "demo" ? "" : command)"), "\(command): \(help.out)")
        }
    }

    @Test func completionScriptsAndTheManPage() throws {
        for shell in ["bash", "zsh", "fish"] {
            let script = try CLI.run(["--generate-completion-script", shell])
            #expect(script.status == 0 && script.out.contains("target-spec"), "\(shell)")
        }
        let page = try String(contentsOfFile: CLI.packageRoot + "/docs/man/vfio-migrate.1", encoding: .utf8)
        #expect(page.contains("target-spec"))
    }
}
