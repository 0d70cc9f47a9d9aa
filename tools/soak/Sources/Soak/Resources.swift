// What the process holds: descriptors, threads, resident memory. Read before the first run
// and after each, so growth over a thousand migrations shows.
import Foundation

struct Resources: CustomStringConvertible {
    var descriptors: Int
    var threads: Int
    var residentKiB: Int

    static func now() -> Resources {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? -1
        let status = String(decoding: FileHandle(forReadingAtPath: "/proc/self/status")?.readDataToEndOfFile() ?? Data(), as: UTF8.self)
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        let kib = Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
        return Resources(descriptors: fds, threads: tasks, residentKiB: kib)
    }

    /// Threads whose names end with `tag` (a migration's own: vfio-tx0.1a2b3c, vfio-rx1...).
    static func threads(tagged tag: String) -> Int {
        var count = 0
        for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? [] {
            let name = (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) ?? ""
            if name.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix(tag) { count += 1 }
        }
        return count
    }

    var description: String { "\(descriptors) fds, \(threads) threads, \(residentKiB / 1024) MiB resident" }
}
