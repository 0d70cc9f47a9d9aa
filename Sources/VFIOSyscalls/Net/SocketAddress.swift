// A resolved socket address (IPv4 or IPv6) kept by value, and its text form for messages.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct SocketAddress: Sendable {
    var storage = sockaddr_storage()
    var length: socklen_t = 0

    var family: CInt { CInt(storage.ss_family) }

    /// Calls `body` with the address as the sockaddr pointer the socket calls take.
    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafePointer(to: storage) { pointer in
            // SAFETY: sockaddr_storage is large and aligned enough for every sockaddr type.
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }

    /// Fills an address from a call that writes one (getsockname, getpeername).
    static func filled(by call: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> CInt) -> SocketAddress? {
        var address = SocketAddress()
        address.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &address.storage) { pointer in
            // SAFETY: the call writes at most `length` bytes, the size of the storage.
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { call($0, &address.length) }
        }
        return rc == 0 ? address : nil
    }

    /// "127.0.0.1:4444" or "[::1]:4444".
    var text: String {
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let rc = withSockaddr { address, length in
            getnameinfo(address, length, &host, socklen_t(host.count), &service, socklen_t(service.count),
                        NI_NUMERICHOST | NI_NUMERICSERV)
        }
        guard rc == 0 else { return "(unknown address)" }
        let hostText = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let serviceText = String(decoding: service.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return family == AF_INET6 ? "[\(hostText)]:\(serviceText)" : "\(hostText):\(serviceText)"
    }

    var port: UInt16 {
        withSockaddr { address, _ in
            switch CInt(address.pointee.sa_family) {
            case AF_INET:
                // SAFETY: the family says this storage holds a sockaddr_in.
                return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
            case AF_INET6:
                // SAFETY: the family says this storage holds a sockaddr_in6.
                return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
            default:
                return 0
            }
        }
    }
}

extension NetworkAddress {
    /// Every address `host` resolves to, in the resolver's order; `passive` for a listener.
    func resolve(passive: Bool) throws(NetworkAddressError) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = CInt(SOCK_STREAM.rawValue)
        hints.ai_protocol = CInt(IPPROTO_TCP)
        hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0 else {
            let reason = rc == EAI_SYSTEM ? "errno \(errno)" : String(cString: gai_strerror(rc))
            throw NetworkAddressError(text: description, reason: "cannot resolve host '\(host)': \(reason)")
        }
        defer { freeaddrinfo(list) }
        var result: [SocketAddress] = []
        var cursor = list
        while let entry = cursor {
            if let source = entry.pointee.ai_addr, Int(entry.pointee.ai_addrlen) <= MemoryLayout<sockaddr_storage>.size {
                var address = SocketAddress()
                address.length = entry.pointee.ai_addrlen
                withUnsafeMutableBytes(of: &address.storage) { destination in
                    // SAFETY: getaddrinfo's entry holds ai_addrlen bytes, which fit the storage (checked above).
                    destination.copyMemory(from: UnsafeRawBufferPointer(start: source, count: Int(entry.pointee.ai_addrlen)))
                }
                result.append(address)
            }
            cursor = entry.pointee.ai_next
        }
        guard !result.isEmpty else {
            throw NetworkAddressError(text: description, reason: "host '\(host)' resolves to no TCP address")
        }
        return result
    }
}
