// A whole migration in one call: save the sources (pre-copy, compatibility checked against the
// targets before the sources stop), then load the targets. Until the targets have committed
// (every one validated its state and runs), the sources are only stopped, never discarded: if
// the load fails they are returned to RUNNING and the error's outcomes say so.
import VFIOCore
import VFIOKernel

extension Migration {
    public struct MigrateReport: Sendable, Codable {
        public var save: SaveReport
        public var load: LoadReport
    }

    @discardableResult
    public static func migrate(
        _ sources: [VFIODevice], to targets: [VFIODevice], through path: String,
        options: SaveOptions = SaveOptions(), policy: any ConvergencePolicy = PendingBytesPolicy()
    ) throws(VFIOError) -> MigrateReport {
        let save = try Migration.save(sources, to: path, options: options, policy: policy, leaving: .stopped, checkingTargets: targets)
        do {
            let load = try Migration.load(targets, from: path, leaving: .running)
            return MigrateReport(save: save.report, load: load.report)
        } catch {
            var failure = error
            failure.outcomes += returnToRunning(sources)
            failure.message = "the targets did not commit: " + failure.message
            throw failure
        }
    }
}
