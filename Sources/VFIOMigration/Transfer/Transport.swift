// How a migration's connections are made: the source connects (a control connection, then
// one per data channel), the target accepts them. TCP, with TLS 1.3 unless the caller chose
// plain TCP explicitly; an embedder with its own transport implements the two protocols.
import VFIOCore
import VFIOSyscalls

/// The source's side: opens one more connection to the target each call.
public protocol TransferConnecting: Sendable {
    /// "tcp 10.0.0.2:4444" or "tls 10.0.0.2:4444", for messages.
    var description: String { get }
    /// Whether every byte is authenticated (TLS): only then may record checksums be left out.
    var isAuthenticated: Bool { get }
    func connect() throws(VFIOError) -> ConnectionChannel
}

/// The target's side: takes the next connection.
public protocol TransferAccepting: AnyObject {
    var description: String { get }
    var isAuthenticated: Bool { get }
    func accept(timeout: Duration) throws(VFIOError) -> ConnectionChannel
}

/// Whether connections are encrypted and authenticated.
public enum TransportSecurity: Sendable {
    /// TLS 1.3 with certificates both ways (the default a caller must opt out of).
    case tls(TLSContext)
    /// Plain TCP: anyone on the path can read and change the device state. Only when the
    /// operator said so (`--insecure`).
    case insecure

    var isAuthenticated: Bool { if case .tls = self { true } else { false } }
}

public struct TCPConnector: TransferConnecting {
    public let address: NetworkAddress
    public let security: TransportSecurity
    public var options: TCPOptions
    public var connectTimeout: Duration

    public init(to address: NetworkAddress, security: TransportSecurity, options: TCPOptions = TCPOptions(), connectTimeout: Duration = .seconds(10)) {
        self.address = address
        self.security = security
        self.options = options
        self.connectTimeout = connectTimeout
    }

    public var description: String { "\(security.isAuthenticated ? "tls" : "tcp") \(address)" }
    public var isAuthenticated: Bool { security.isAuthenticated }

    public func connect() throws(VFIOError) -> ConnectionChannel {
        do {
            let tcp = try TCPConnection.connect(to: address, timeout: connectTimeout, options: options)
            switch security {
            case .insecure: return ConnectionChannel(tcp)
            case .tls(let context): return ConnectionChannel(try TLSConnection(over: tcp, context: context))
            }
        } catch {
            var failure = ConnectionChannel.failure(error, "cannot connect to \(address)", description)
            if failure.code == .authenticationFailed { failure.hint = "check both ends' certificates and the target's --allow-client list" }
            throw failure
        }
    }
}

public final class TCPAcceptor: TransferAccepting, Sendable {
    public let listener: TCPListener
    public let security: TransportSecurity

    /// Listens on `address` (port 0: any free port, see `port`).
    public init(listeningOn address: NetworkAddress, security: TransportSecurity, options: TCPOptions = TCPOptions()) throws(VFIOError) {
        do {
            listener = try TCPListener.bind(address, options: options)
        } catch {
            throw ConnectionChannel.failure(error, "cannot listen on \(address)", "tcp \(address)")
        }
        self.security = security
    }

    public var port: UInt16 { listener.port }
    public var description: String { "\(security.isAuthenticated ? "tls" : "tcp") listener on \(listener.localAddress)" }
    public var isAuthenticated: Bool { security.isAuthenticated }

    public func accept(timeout: Duration) throws(VFIOError) -> ConnectionChannel {
        do {
            let tcp = try listener.accept(timeout: timeout)
            switch security {
            case .insecure: return ConnectionChannel(tcp)
            case .tls(let context): return ConnectionChannel(try TLSConnection(over: tcp, context: context))
            }
        } catch {
            throw ConnectionChannel.failure(error, "no connection accepted on \(listener.localAddress)", description)
        }
    }

    public func close() { try? listener.close() }
}
