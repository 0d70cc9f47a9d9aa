import ArgumentParser

/// Exit codes (docs/cli.md): 0 ok, 1 operation failed, 2 usage, 3 incompatible,
/// 4 corrupt stream, 5 device or file not found, 6 not supported here.
enum ExitStatus: Int32 {
    case failed = 1
    case usage = 2
    case incompatible = 3
    case corrupt = 4
    case notFound = 5
    case notSupported = 6
}

struct CLIError: Error, CustomStringConvertible {
    let message: String
    let code: ExitStatus
    var description: String { message }
}
