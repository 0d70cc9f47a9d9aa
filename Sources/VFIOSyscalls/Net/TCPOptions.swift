// Socket settings a listener gives every accepted connection and a client its connection.

public struct TCPOptions: Sendable, Equatable {
    /// TCP_NODELAY: small writes (headers, end records) are sent at once, not held back.
    public var noDelay: Bool
    /// SO_SNDBUF / SO_RCVBUF in bytes; nil keeps the kernel's autotuning.
    public var sendBufferSize: Int?
    public var receiveBufferSize: Int?
    /// A read or write that makes no progress for this long fails with ETIMEDOUT; nil waits for ever.
    public var idleTimeout: Duration?

    public init(noDelay: Bool = true, sendBufferSize: Int? = nil, receiveBufferSize: Int? = nil, idleTimeout: Duration? = nil) {
        self.noDelay = noDelay
        self.sendBufferSize = sendBufferSize
        self.receiveBufferSize = receiveBufferSize
        self.idleTimeout = idleTimeout
    }
}

/// "2 s", "250 ms" for messages.
func describe(_ duration: Duration) -> String {
    let milliseconds = duration / .milliseconds(1)
    if milliseconds >= 1000 && milliseconds.truncatingRemainder(dividingBy: 1000) == 0 { return "\(Int(milliseconds / 1000)) s" }
    return milliseconds >= 1 ? "\(Int(milliseconds.rounded())) ms" : "\(duration)"
}
