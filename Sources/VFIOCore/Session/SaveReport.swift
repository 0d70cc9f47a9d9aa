// What a save did: per device, per pre-copy round and per phase. Kept up to date as the
// session steps, so a failure can hand over what happened until then.

/// Bytes a device still has to send, as last read (PRECOPY_INFO and MIG_DATA_SIZE).
public struct PendingState: Sendable, Hashable, Codable {
    public var device: String
    /// Initial pre-copy bytes still to read (0 outside pre-copy).
    public var initialBytes: UInt64
    /// Dirty pre-copy bytes the device reported.
    public var dirtyBytes: UInt64
    /// MIG_DATA_SIZE: what STOP_COPY is expected to produce; nil when the device cannot say.
    public var stopCopyEstimate: UInt64?
    /// PRECOPY_INFO said REINIT: new initial data appeared.
    public var reinitialized: Bool

    public init(device: String, initialBytes: UInt64 = 0, dirtyBytes: UInt64 = 0, stopCopyEstimate: UInt64? = nil, reinitialized: Bool = false) {
        self.device = device
        self.initialBytes = initialBytes
        self.dirtyBytes = dirtyBytes
        self.stopCopyEstimate = stopCopyEstimate
        self.reinitialized = reinitialized
    }

    /// What stopping now would still have to move: pre-copy data not yet read plus the
    /// stop-copy estimate.
    public var remainingBytes: UInt64 { initialBytes.saturatingAdd(dirtyBytes).saturatingAdd(stopCopyEstimate ?? 0) }
}

public struct SaveReport: Sendable, Hashable, Codable {
    public struct Device: Sendable, Hashable, Codable {
        public var name: String
        public var preCopyBytes: UInt64 = 0
        public var stopCopyBytes: UInt64 = 0
        public var chunks: UInt64 = 0
        /// MIG_DATA_SIZE when the session was set up.
        public var stopCopyEstimateAtSetup: UInt64?
        /// MIG_DATA_SIZE read at switchover, just before the device entered STOP_COPY: what
        /// the downtime really had to move.
        public var stopCopyEstimateAtSwitchover: UInt64?
        /// Times PRECOPY_INFO reported REINIT (new initial data).
        public var reinitCount = 0
        public var totalBytes: UInt64 { preCopyBytes + stopCopyBytes }

        public init(name: String) { self.name = name }
    }

    /// One pre-copy round: every device iterated once.
    public struct Round: Sendable, Hashable, Codable {
        public var index: Int
        /// Device bytes read this round.
        public var bytes: UInt64
        public var duration: Duration
        /// Every device's remaining bytes after the round.
        public var remainingBytes: UInt64
        /// Bytes the embedder counted as its own (its RAM), when it said.
        public var externalPendingBytes: UInt64?
        /// What the convergence policy decided after this round, when one ran.
        public var decision: String?
        /// Guest memory: page bytes sent this round, bytes the round's sync found newly dirty
        /// and the dirty rate it measured, bytes still to send after it (nil without memory).
        public var memoryBytes: UInt64?
        public var memoryDirtyBytes: UInt64?
        public var memoryPendingBytes: UInt64?
        /// Newly dirty bytes per second since the previous sync.
        public var dirtyRate: Double?
        /// A device reported REINIT after this round: new initial data, so its pending bytes
        /// grew for a reason other than the guest's writes.
        public var reinitialized: Bool = false
        /// Bytes per second the round moved (device and memory), and what the policy
        /// estimated a stop after it would take.
        public var bandwidth: Double?
        public var estimatedDowntime: Duration?

        /// Device and memory bytes the round moved.
        public var totalBytes: UInt64 { bytes + (memoryBytes ?? 0) }
    }

    /// Time spent in each phase. Downtime is `stopping + finalRead`: from the first device
    /// leaving a running state to the last byte of device state.
    public struct Timings: Sendable, Hashable, Codable {
        public var setup: Duration = .zero
        public var preCopy: Duration = .zero
        /// P2P quiescing (RUNNING_P2P / PRE_COPY_P2P) of every device.
        public var quiesce: Duration = .zero
        /// Entering STOP_COPY, every device.
        public var stopping: Duration = .zero
        /// Reading STOP_COPY to its end, every device, and writing it to the sink.
        public var finalRead: Duration = .zero
        /// Leaving STOP_COPY (and resuming, for a capture).
        public var finish: Duration = .zero
        public var downtime: Duration { quiesce + stopping + finalRead }
    }

    public var devices: [Device]
    public var rounds: [Round] = []
    public var timings = Timings()
    /// Whether pre-copy ran at all (every device supports it and it was not turned off).
    public var usedPreCopy = false
    /// True when the convergence policy stopped pre-copy because the state converged; false
    /// when it gave up (round cap, no progress), nil when no policy ran.
    public var converged: Bool?
    /// The policy's reason for ending pre-copy, with its numbers.
    public var convergenceReason: String?
    /// What the policy expected the downtime to be when it ended pre-copy (remaining bytes
    /// over the bandwidth); `timings.downtime` is what it was.
    public var estimatedDowntime: Duration?
    /// Guest memory, when the save carried it: the tracker, the bytes per phase.
    public var memory: MemorySaveReport?

    public init(devices: [String]) { self.devices = devices.map(Device.init(name:)) }

    public var totalBytes: UInt64 { devices.reduce(0) { $0 + $1.totalBytes } }
}
