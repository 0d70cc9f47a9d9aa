// What a network migration may do and how long it waits for the other end. Defaults are for
// a migration between two hosts on one data-centre network.
import VFIOStream

/// Whether records carry CRC32C checksums.
public enum RecordChecksums: String, Sendable, Hashable, Codable {
    /// On plain TCP, off under TLS (its MAC already covers every byte; NO_RECORD_CHECKSUMS);
    /// on for a stream file or any sink whose transport is not known.
    case automatic
    case on
    case off
}

public struct TransferOptions: Sendable {
    /// Data connections; devices are spread over them and a large device is split across
    /// several (each its own stream, reassembled in order on the target).
    public var channels: Int
    public var checksums: RecordChecksums
    /// Wait for the target's switchover acknowledgement (it loaded every device's pre-copy
    /// initial data) before stopping the sources. Devices without PRE_COPY need none.
    public var switchoverAck: Bool
    /// Connecting, the proposal and its answer, and each data channel's first bytes.
    public var handshakeTimeout: Duration
    /// A data channel that moves no byte for this long fails the migration (a stalled peer).
    public var idleTimeout: Duration
    /// How long the source keeps iterating, after its policy said stop, for the acknowledgement.
    public var switchoverAckTimeout: Duration
    /// How long the source waits, after its last byte, for the target to confirm the load.
    public var loadTimeout: Duration
    /// How long the target waits for the source's commit after it confirmed the load.
    public var commitTimeout: Duration
    /// The sender's data path (buffers, NUMA node, memory locking).
    public var pipeline: PipelineOptions

    public init(
        channels: Int = 1, checksums: RecordChecksums = .automatic, switchoverAck: Bool = true,
        handshakeTimeout: Duration = .seconds(30), idleTimeout: Duration = .seconds(60),
        switchoverAckTimeout: Duration = .seconds(120), loadTimeout: Duration = .seconds(120),
        commitTimeout: Duration = .seconds(60), pipeline: PipelineOptions = PipelineOptions()
    ) {
        self.channels = channels
        self.checksums = checksums
        self.switchoverAck = switchoverAck
        self.handshakeTimeout = handshakeTimeout
        self.idleTimeout = idleTimeout
        self.switchoverAckTimeout = switchoverAckTimeout
        self.loadTimeout = loadTimeout
        self.commitTimeout = commitTimeout
        self.pipeline = pipeline
    }
}

/// What a target takes.
public struct ReceiveOptions: Sendable {
    /// The largest record payload accepted (the receive buffer per channel): a sender that
    /// proposes more is refused before any of its data arrives.
    public var maxPayload: Int
    /// The most data channels accepted.
    public var maxChannels: Int
    /// Accept streams without record checksums. Automatic: only over an authenticated
    /// transport.
    public var acceptsNoRecordChecksums: Bool?
    public var handshakeTimeout: Duration
    public var idleTimeout: Duration
    public var commitTimeout: Duration
    /// How long a new control connection may take to send its proposal; one that has not is
    /// dropped and the next is served (with TCPAcceptor's own deadline for the TLS handshake,
    /// a connection that does not identify itself holds the listener only this long).
    public var authenticationTimeout: Duration
    /// How long to wait for a source to propose; `handshakeTimeout` then starts anew when the
    /// proposal arrives, so a source that comes late still gets the whole handshake.
    public var sourceWait: SourceWait
    /// NUMA node for the receive buffers and reader threads (nil: the first device's).
    public var node: Int?

    public init(
        maxPayload: Int = 16 << 20, maxChannels: Int = 16, acceptsNoRecordChecksums: Bool? = nil,
        handshakeTimeout: Duration = .seconds(30), idleTimeout: Duration = .seconds(60), commitTimeout: Duration = .seconds(60),
        authenticationTimeout: Duration = .seconds(5), sourceWait: SourceWait = .handshakeTimeout, node: Int? = nil
    ) {
        self.maxPayload = min(max(maxPayload, StreamFormat.minimumMaxPayload), StreamFormat.hardMaxPayload)
        self.maxChannels = max(1, maxChannels)
        self.acceptsNoRecordChecksums = acceptsNoRecordChecksums
        self.handshakeTimeout = handshakeTimeout
        self.idleTimeout = idleTimeout
        self.commitTimeout = commitTimeout
        self.authenticationTimeout = authenticationTimeout
        self.sourceWait = sourceWait
        self.node = node
    }
}

/// How long a receiver waits for a source to propose a migration.
public enum SourceWait: Sendable, Hashable {
    /// As long as the handshake timeout.
    case handshakeTimeout
    case limit(Duration)
    /// Until a source proposes or the receive is cancelled (an operator's receiver).
    case indefinitely
}
