// Logging through swift-log to standard error: `vfio-migrate: info: message key=value`.
// Messages go through the console's escape like any other line.
import Foundation
import Logging

struct ConsoleLogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        let fields = all.keys.sorted().map { "\($0)=\(all[$0]!)" }
        Console.err((["vfio-migrate: \(event.level):", "\(event.message)"] + fields).joined(separator: " "))
    }
}

enum Log {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var bootstrapped = false

    /// The process's logger at `level` (the first call sets up swift-log; a process runs one command).
    static func logger(level: Logger.Level) -> Logger {
        lock.lock()
        if !bootstrapped {
            bootstrapped = true
            LoggingSystem.bootstrap { _ in ConsoleLogHandler(logLevel: .trace) }
        }
        lock.unlock()
        var logger = Logger(label: "vfio-migrate")
        logger.logLevel = level
        return logger
    }
}
