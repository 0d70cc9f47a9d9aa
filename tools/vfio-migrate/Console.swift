// Where the tool writes: results to standard output, errors, logs and progress to standard
// error. Every line passes through one last escape of control characters, so text from a
// device or a stream that a command forgot to escape still cannot drive the terminal.
import Foundation
import VFIOKernel

enum Console {
    /// One or more lines of results.
    static func out(_ text: String) { write(text, to: FileHandle.standardOutput) }

    /// One or more lines for the person at the terminal (errors, logs, summaries).
    static func err(_ text: String) { write(text, to: FileHandle.standardError) }

    /// Bytes as they are (JSON that is already escaped).
    static func raw(_ data: Data, toStandardError: Bool = false) {
        (toStandardError ? FileHandle.standardError : FileHandle.standardOutput).write(data)
    }

    static var standardErrorIsTerminal: Bool { isatty(2) == 1 }

    private static func write(_ text: String, to handle: FileHandle) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { DisplayText.escaped(String($0)) }
        handle.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }
}

/// Text from a device, sysfs or a stream, escaped and cut to a length a line can hold.
func shown(_ text: String, limit: Int = 256) -> String { DisplayText.bounded(text, limit: limit) }
