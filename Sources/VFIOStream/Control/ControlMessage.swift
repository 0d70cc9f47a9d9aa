// The control messages as values. A stream header inside a message (propose, accept) is the
// stream format's own header, encoded and checked by its codec.

/// Why a target refused a proposal.
public enum RefusalCode: UInt32, Sendable, Hashable, Codable, CustomStringConvertible {
    /// A device (or the device count, or a memory region) does not match.
    case incompatible = 1
    /// The proposal exceeds what the target takes (payload size, channels, header size).
    case limits = 2
    /// The stream would carry no record checksums and the target does not accept that here.
    case checksums = 3
    /// The target could not prepare its devices (it says why).
    case targetUnavailable = 4
    /// Anything else; the text says what.
    case other = 5

    public var description: String {
        switch self {
        case .incompatible: "incompatible"
        case .limits: "limits"
        case .checksums: "checksums"
        case .targetUnavailable: "target unavailable"
        case .other: "other"
        }
    }
}

/// Where the target left its devices when it confirmed the hand-over.
public enum CommittedState: UInt32, Sendable, Hashable, Codable {
    case stopped = 1
    case running = 2

    // In JSON as the state's name, not the wire number.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self == .running ? "RUNNING" : "STOP")
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        switch text {
        case "RUNNING": self = .running
        case "STOP": self = .stopped
        default: throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a committed state: \(text)"))
        }
    }
}

public enum ControlMessage: Sendable, Equatable {
    /// Source: the header data channel 0 will carry, without the migration id (the target
    /// assigns it). Its `channel` field gives the number of data channels (absent: one).
    case propose(StreamHeader)
    /// Target: its own devices and regions, the limits it reads with (`maxPayload`) and, as
    /// `migrationID`, the nonce every data channel's header must carry.
    case accept(StreamHeader)
    case refuse(RefusalCode, reason: String)
    /// Target: device `device` has loaded its data stream up to `offset`, where a progress
    /// record said its pre-copy initial data was complete; `epoch` counts the device's
    /// acknowledgements (1 first). The source stops only once each pre-copy device's newest
    /// completion (a REINIT brings a new one) was acknowledged.
    case switchoverAck(device: UInt16, epoch: UInt32, offset: UInt64)
    /// Target: every channel ended, every check passed and every device left RESUMING (which
    /// took `validationNanoseconds`: the devices' own check of what they received).
    case loaded(deviceCount: UInt32, totalStateBytes: UInt64, validationNanoseconds: UInt64)
    /// Target: the load failed; its devices were reset (the text says where they are).
    case failed(reason: String)
    /// Source: its devices are stopped for good; the target may run.
    case commit
    /// Target: took the commit; where its devices are now, and how long resuming them took.
    case committed(CommittedState, resumeNanoseconds: UInt64)

    public var type: ControlMessageType {
        switch self {
        case .propose: .propose
        case .accept: .accept
        case .refuse: .refuse
        case .switchoverAck: .switchoverAck
        case .loaded: .loaded
        case .failed: .failed
        case .commit: .commit
        case .committed: .committed
        }
    }
}
