// Scripted faults a mock device injects. Settable at any time (MockDevice.faults) and from a
// device spec's options (docs/mock.md).
import SystemPackage

public struct MockFaults: Sendable, Equatable {
    /// Fails one direct FSM arc (one step of a combination transition).
    public struct ArcFailure: Sendable, Equatable {
        public var from: MockDeviceState
        public var to: MockDeviceState
        public var errno: Errno
        /// Land in ERROR instead of staying in `from`.
        public var landInError: Bool
        /// How many more times to fail; nil = every time.
        public var remaining: Int?

        public init(from: MockDeviceState, to: MockDeviceState, errno: Errno, landInError: Bool = false, remaining: Int? = nil) {
            self.from = from
            self.to = to
            self.errno = errno
            self.landInError = landInError
            self.remaining = remaining
        }
    }

    public var arcFailures: [ArcFailure] = []
    /// At most this many bytes per read of a data fd.
    public var shortReadLimit: Int?
    /// At most this many bytes per write of a data fd.
    public var shortWriteLimit: Int?
    /// Every Nth read, write or ioctl on the device's fds fails with EINTR (N ≥ 2).
    public var interruptEvery: Int?
    /// Every Nth read or write of a data fd set O_NONBLOCK fails with EAGAIN (N ≥ 2).
    public var wouldBlockEvery: Int?
    /// A data session dies (ENODEV) once this many bytes went through it.
    public var noDeviceAfterBytes: UInt64?
    /// Another thread resets the device once this many bytes of a session went through.
    public var resetAfterBytes: UInt64?
    /// The device disappears once this many bytes of a session went through.
    public var disappearAfterBytes: UInt64?
    /// Save producers write nothing while set: the pipe stays empty, so blocking reads wait
    /// and non-blocking reads get EAGAIN, with data still pending (API only, not a spec option).
    public var stallProducer = false

    public init() {}

    public var isEmpty: Bool { self == MockFaults() }

    /// The failure scripted for arc `from → to`, consuming one use of it.
    mutating func takeArcFailure(from: MockDeviceState, to: MockDeviceState) -> ArcFailure? {
        guard let i = arcFailures.firstIndex(where: { $0.from == from && $0.to == to && ($0.remaining ?? 1) > 0 }) else { return nil }
        let failure = arcFailures[i]
        if let left = failure.remaining { arcFailures[i].remaining = left - 1 }
        return failure
    }
}
