// A whole migration in one call: save the sources (pre-copy, compatibility checked against the
// targets before the sources stop), then load the targets. Until the targets have committed
// (every one validated its state and runs), the sources are only stopped, never discarded: if
// the load fails they are returned to RUNNING and the error says so.
import VFIOCore

extension Migration {
    public struct MigrateReport: Sendable, Codable {
        public var save: SaveReport
        public var load: LoadReport
    }

    @discardableResult
    public static func migrate(
        _ sources: [OpenedDevice], to targets: [OpenedDevice], through path: String,
        options: SaveOptions = SaveOptions()
    ) throws(VFIOError) -> MigrateReport {
        var saveOptions = options
        saveOptions.finalState = .stop
        let (save, _) = try Migration.save(sources, to: path, options: saveOptions, checkingTargets: targets)
        do {
            let (load, _) = try Migration.load(targets, from: path)
            return MigrateReport(save: save, load: load)
        } catch {
            var failure = error
            let outcomes = sources.map { source in
                do {
                    let recovery = try source.driver().recover(preferring: .running)
                    return "\(source.displayName) \(recovery)"
                } catch {
                    return "\(source.displayName) could not be restarted: \(error)"
                }
            }
            let note = "the targets did not commit, source devices: " + outcomes.joined(separator: "; ")
            failure.outcome = failure.outcome.map { $0 + "; " + note } ?? note
            throw failure
        }
    }
}
