// Numbers of the control protocol: the small messages a source and a target exchange on their
// control connection beside the data channels (docs/transfer-protocol.md is normative).

public enum ControlFormat {
    /// First eight bytes each side sends on a control connection: 0x89 "VFIOC" CR LF (the
    /// stream's magic with C for control, so a data channel and a control connection can never
    /// be taken for one another).
    public static let magic: [UInt8] = [0x89, 0x56, 0x46, 0x49, 0x4F, 0x43, 0x0D, 0x0A]
    public static let major: UInt16 = 1
    public static let minor: UInt16 = 0
    /// Magic, major, minor, role, reserved.
    public static let prefixSize = 16
    /// Type, flags, length, CRC, sequence.
    public static let messageHeaderSize = 16
    /// The largest message payload: a stream header (at most 1 MiB) and nothing more.
    public static let maxPayload = StreamFormat.hardMaxHeaderLength
    /// Reason texts are cut to this many bytes by the encoder and refused above it.
    public static let maxReasonLength = 4096
    /// Message flag bit 0: a receiver that does not know the type skips the message.
    public static let skippable: UInt16 = 1
}

/// Which end of a migration speaks on a control connection.
public enum ControlRole: UInt16, Sendable, Hashable, CustomStringConvertible {
    case source = 1
    case target = 2

    public var description: String { self == .source ? "source" : "target" }
    public var peer: ControlRole { self == .source ? .target : .source }
}

/// Message types. Each is sent by one role only.
public enum ControlMessageType: UInt16, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case propose = 1
    case accept = 2
    case refuse = 3
    case switchoverAck = 4
    case loaded = 5
    case failed = 6
    case commit = 7
    case committed = 8

    /// The role that sends it.
    public var sender: ControlRole {
        switch self {
        case .propose, .commit: .source
        case .accept, .refuse, .switchoverAck, .loaded, .failed, .committed: .target
        }
    }

    public var description: String {
        switch self {
        case .propose: "propose"
        case .accept: "accept"
        case .refuse: "refuse"
        case .switchoverAck: "switchover-ack"
        case .loaded: "loaded"
        case .failed: "failed"
        case .commit: "commit"
        case .committed: "committed"
        }
    }
}
