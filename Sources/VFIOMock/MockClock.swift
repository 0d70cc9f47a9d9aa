// The emulator's time, which only a test moves: `advance(by:)` performs the device work that
// period covers (DMA workloads), deterministically and on the caller's thread, so a test
// decides exactly when guest memory changes.
import Foundation

public final class MockClock: @unchecked Sendable {
    private let lock = NSLock()
    private var elapsed: Duration = .zero
    /// The kernel whose devices work when time moves (set once, by the kernel).
    weak var kernel: MockKernel?

    init() {}

    /// Time since the kernel was created, as far as its devices know.
    public var now: Duration { lock.withLock { elapsed } }

    /// Moves time forward and runs what devices do in that period before returning.
    public func advance(by period: Duration) {
        precondition(period >= .zero, "the mock clock only moves forward")
        lock.withLock { elapsed += period }
        let parts = period.components
        let nanoseconds = UInt64(parts.seconds) &* 1_000_000_000 &+ UInt64(parts.attoseconds / 1_000_000_000)
        kernel?.performDeviceWork(nanoseconds: nanoseconds)
    }
}
