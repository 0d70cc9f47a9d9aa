// Cancelling a migration that runs on another thread: the token interrupts every connection
// the migration registered, so whatever it is blocked in returns, and the migration rolls its
// sources back to RUNNING (or resets its targets) and throws `.cancelled`.
import Synchronization
import VFIOCore

public final class MigrationCancellation: Sendable {
    private struct State {
        var reason: String?
        var handlers: [Int: @Sendable () -> Void] = [:]
        var next = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Cancels once; later calls do nothing. Safe from any thread, also from a signal-handling one.
    public func cancel(reason: String = "cancelled by the caller") {
        let handlers: [@Sendable () -> Void]? = state.withLock { s in
            guard s.reason == nil else { return nil }
            s.reason = reason
            return Array(s.handlers.values)
        }
        for handler in handlers ?? [] { handler() }
    }

    public var isCancelled: Bool { state.withLock { $0.reason != nil } }
    public var reason: String? { state.withLock { $0.reason } }

    /// Runs `handler` on cancellation (at once when already cancelled); the returned key removes it.
    func register(_ handler: @escaping @Sendable () -> Void) -> Int {
        let (key, already) = state.withLock { s -> (Int, Bool) in
            s.next += 1
            s.handlers[s.next] = handler
            return (s.next, s.reason != nil)
        }
        if already { handler() }
        return key
    }

    func unregister(_ key: Int) {
        _ = state.withLock { $0.handlers.removeValue(forKey: key) }
    }

    /// The error a cancelled migration throws, keeping where the devices were left.
    func error(replacing error: VFIOError) -> VFIOError {
        var failure = error
        failure.code = .cancelled
        failure.message = "\(reason ?? "cancelled"): the migration was stopped (\(error.message))"
        return failure
    }
}
