// When pre-copy stops: the device has sent its initial image and what is left dirty fits the
// budget, or a round limit is reached (a device that dirties faster than we read never converges).

public struct PreCopyPolicy: Sendable, Equatable {
    /// Stop once initial bytes are drained and pending dirty bytes are at most this.
    public var convergedBelow: UInt64
    /// Give up converging after this many drain rounds and move to STOP_COPY anyway.
    public var maxRounds: Int

    public init(convergedBelow: UInt64 = 1 << 20, maxRounds: Int = 16) {
        precondition(maxRounds > 0, "pre-copy needs at least one round")
        self.convergedBelow = convergedBelow
        self.maxRounds = maxRounds
    }

    /// True when a device reporting `info` after a drain round is ready to stop.
    public func hasConverged(_ info: PreCopyInfo) -> Bool {
        info.initialBytes == 0 && info.dirtyBytes <= convergedBelow
    }
}
