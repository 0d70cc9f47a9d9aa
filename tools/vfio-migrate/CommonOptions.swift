// The options every command takes, and the harness that runs a command body: it sets up
// logging, turns every failure into one line and the documented exit status, and prints the
// JSON error document when --json was given.
import ArgumentParser
import Foundation
import Logging
import VFIOMigration
import VFIOMockDevices

extension Logger.Level: @retroactive ExpressibleByArgument {}

struct CommonOptions: ParsableArguments {
    @Flag(help: "Print the result as JSON (one document, its schema in docs/schemas/).") var json = false
    @Flag(name: .shortAndLong, help: "Print no progress and no summary; errors still go to standard error.") var quiet = false
    @Flag(name: .shortAndLong, help: "Say more: info logging, and every device's outcome and the partial report on failure.")
    var verbose = false
    @Option(help: "Log level: trace, debug, info, notice, warning, error or critical (default warning; info with --verbose).")
    var logLevel: Logger.Level?

    var effectiveLogLevel: Logger.Level { logLevel ?? (verbose ? .info : .warning) }
}

struct EnvironmentOptions: ParsableArguments {
    @Option(help: "Root of the sysfs tree used to find devices.") var sysfsRoot = "/sys"
    @Option(help: "Root of the device tree holding vfio/.") var devRoot = "/dev"

    /// The host's devices, plus `mock:` devices in an emulator of this process.
    func make() -> DeviceEnvironment { DeviceEnvironment.withMockDevices(sysfsRoot: sysfsRoot, devRoot: devRoot) }
}

/// What a command body gets: the options, the logger, and progress that fits the terminal.
struct Invocation {
    let options: CommonOptions
    let logger: Logger

    /// Live progress on a terminal, a one-line summary otherwise, nothing with --quiet.
    func progress(_ title: String) -> ProgressReporter {
        let mode: ProgressReporter.Mode = options.quiet ? .quiet : (Console.standardErrorIsTerminal ? .live : .summary)
        return ProgressReporter(title: title, mode: mode)
    }

    /// Text for people on standard output, unless standard output carries JSON or a stream.
    func say(_ text: String) {
        if options.json { return }
        Console.out(text)
    }
}

/// Runs `body`; every failure becomes one line on standard error (more with --verbose), the
/// error document on standard output with --json (on standard error when standard output
/// carries the stream), and its exit status.
func execute(_ options: CommonOptions, standardOutputCarriesStream: Bool = false, _ body: (Invocation) throws -> Void) throws {
    let invocation = Invocation(options: options, logger: Log.logger(level: options.effectiveLogLevel))
    let report: FailureReport
    var details: [String] = []
    do {
        try body(invocation)
        return
    } catch let error as VFIOError {
        report = FailureReport(error)
        details = error.verboseLines
    } catch let failure as CLIFailure {
        report = FailureReport(failure)
    } catch let exit as ExitCode {
        throw exit
    } catch {
        report = FailureReport(CLIFailure(.failed, "\(error)"))
    }
    Console.err("vfio-migrate: " + shown(report.line, limit: 4096))
    if options.verbose { Console.err(details.joined(separator: "\n")) }
    if options.json {
        struct ErrorDocument: Encodable { var error: FailureReport }
        if standardOutputCarriesStream {
            if let data = try? JSONOutput.encode(ErrorDocument(error: report)) { Console.err(String(decoding: data, as: UTF8.self)) }
        } else {
            try? JSONOutput.print(ErrorDocument(error: report))
        }
    }
    throw ExitCode(report.exitStatus)
}

/// Exits with `status` after the command printed its own result (compat, replay, inspect).
func exitWith(_ status: ExitStatus) throws -> Never {
    throw ExitCode(status.rawValue)
}
