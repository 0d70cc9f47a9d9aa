// A target serves one migration at a time. Once this migration's connections are all in,
// the listener still answers: every later connection is refused at once (a second source
// reads "another migration is in progress" instead of waiting in the listen queue for its
// own deadline) and closed, and the migration that runs is not disturbed.
import Foundation
import VFIOCore
import VFIOStream

final class BusyResponder: @unchecked Sendable {
    private let acceptor: any TransferAccepting
    private let wait: Duration
    private let note: @Sendable (String) -> Void
    private let lock = NSLock()
    private var stopping = false
    private var stopped = false
    /// The connection being answered, so `stop` can wake a read blocked on it.
    private var current: ConnectionChannel?
    private let done = DispatchSemaphore(value: 0)
    static let pollSlice: Duration = .milliseconds(5)

    /// Starts answering; `wait` bounds each answer, `note` records every connection turned away.
    init(acceptor: any TransferAccepting, migration: MigrationID, answeringWithin wait: Duration, note: @escaping @Sendable (String) -> Void) {
        self.acceptor = acceptor
        self.wait = wait
        self.note = note
        let name = ThreadNames.name("busy", migration)
        let thread = Thread { [self] in
            ThreadNames.nameCurrent(name)
            run()
        }
        thread.start()
    }

    private func run() {
        defer { done.signal() }
        while !lock.withLock({ stopping }) {
            let channel: ConnectionChannel
            do {
                // Short: the migration's end waits for this thread to notice the stop (at
                // 100 ms every receive ended up to 100 ms late). A TLS handshake under way
                // still runs to the acceptor's authentication deadline.
                channel = try acceptor.accept(timeout: Self.pollSlice)
            } catch {
                if error.code == .timedOut || error.errno == .timedOut { continue }
                if error.code == .authenticationFailed || error.code == .ioFailure {
                    note(error.message)
                    continue
                }
                return  // the listener is closed or broken: nobody is left to answer
            }
            let answering = lock.withLock { () -> Bool in
                guard !stopping else { return false }
                current = channel
                return true
            }
            if answering { answer(channel) }
            lock.withLock { current = nil }
            channel.close()
        }
    }

    private func answer(_ channel: ConnectionChannel) {
        do throws(VFIOError) {
            try channel.setIdleTimeout(wait)
            let control = try ControlConnection(channel, role: .target)
            // Read what a source sends first: closing with its proposal unread would reset the
            // connection, and the refusal with it.
            let first = try control.receive(expecting: "a connection while another migration runs", timeout: wait)
            guard case .propose = first else {
                throw VFIOError(.streamCorrupt, "its first message was \(first.type), not a proposal", device: channel.name)
            }
            try control.send(.refuse(.targetUnavailable, reason: "this target is receiving another migration; one is served at a time"))
            try? channel.finishSending()
            note("\(channel.name): refused, another migration is in progress")
        } catch {
            note("\(channel.name): turned away while another migration runs: \(error.message)")
        }
    }

    /// Stops answering and waits for the thread (at most one answer or TLS handshake long).
    func stop() {
        let first = lock.withLock { () -> Bool in
            guard !stopped else { return false }
            stopped = true
            stopping = true
            // interrupt() is a shutdown(2): safe under the lock, and the thread closes the
            // connection only after it took the lock again.
            current?.interrupt()
            return true
        }
        if first { done.wait() }
    }
}
