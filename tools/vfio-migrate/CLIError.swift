import ArgumentParser
import Foundation
import VFIOCore

/// Exit codes (docs/cli.md): 0 ok, 1 operation failed, 2 usage, 3 incompatible,
/// 4 corrupt stream, 5 device or file not found, 6 not supported here.
enum ExitStatus: Int32 {
    case failed = 1
    case usage = 2
    case incompatible = 3
    case corrupt = 4
    case notFound = 5
    case notSupported = 6

    init(_ code: VFIOError.Code) {
        switch code {
        case .streamIncompatible: self = .incompatible
        case .streamCorrupt: self = .corrupt
        case .notFound: self = .notFound
        case .notSupported: self = .notSupported
        case .invalidArgument: self = .usage
        default: self = .failed
        }
    }
}

struct CLIError: Error, CustomStringConvertible {
    let message: String
    let code: ExitStatus
    var description: String { message }
}

/// Runs a command body; engine errors become one line on stderr and a documented exit code.
func reporting(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as VFIOError {
        FileHandle.standardError.write(Data("vfio-migrate: \(error)\n".utf8))
        throw ExitCode(ExitStatus(error.code).rawValue)
    } catch let error as CLIError {
        FileHandle.standardError.write(Data("vfio-migrate: \(error.message)\n".utf8))
        throw ExitCode(error.code.rawValue)
    }
}

func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    FileHandle.standardOutput.write(try encoder.encode(value))
    print()
}

/// Parses sizes like 4096, 64KiB, 1MiB, 16GiB.
func parseSize(_ text: String) throws -> Int {
    let units: [(String, Int)] = [("KiB", 10), ("MiB", 20), ("GiB", 30), ("K", 10), ("M", 20), ("G", 30), ("B", 0)]
    for (suffix, shift) in units where text.hasSuffix(suffix) {
        if let n = Int(text.dropLast(suffix.count)) { return n << shift }
    }
    guard let n = Int(text) else { throw CLIError(message: "bad size '\(text)' (use e.g. 65536, 64KiB, 1MiB)", code: .usage) }
    return n
}

func formatBytes(_ n: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(n)
    var i = 0
    while value >= 1024 && i < units.count - 1 {
        value /= 1024
        i += 1
    }
    return i == 0 ? "\(n) B" : String(format: "%.2f %@", value, units[i])
}

/// Durations for people: "349 µs", "12.5 ms", "2.31 s".
func formatDuration(_ d: Duration) -> String {
    let seconds = d.seconds
    if seconds < 1e-3 { return String(format: "%.0f µs", seconds * 1e6) }
    if seconds < 1 { return String(format: "%.1f ms", seconds * 1e3) }
    return String(format: "%.2f s", seconds)
}
