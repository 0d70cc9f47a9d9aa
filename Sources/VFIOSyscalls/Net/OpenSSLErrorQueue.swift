// OpenSSL's per-thread error queue, read into text right after the failing call.
import COpenSSL

struct OpenSSLErrorQueue {
    /// Library reason codes, oldest first, and their reason strings.
    var codes: [UInt] = []
    var reasons: [String] = []

    /// Empties the calling thread's queue into a value.
    static func drain() -> OpenSSLErrorQueue {
        var queue = OpenSSLErrorQueue()
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            queue.codes.append(code)
            if let text = ERR_reason_error_string(code) {
                queue.reasons.append(String(cString: text))
            } else {
                var buffer = [CChar](repeating: 0, count: 256)
                ERR_error_string_n(code, &buffer, buffer.count)
                queue.reasons.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
        }
        return queue
    }

    var isEmpty: Bool { codes.isEmpty }

    /// The reason texts joined, or `fallback` when OpenSSL left none.
    func text(or fallback: String) -> String { reasons.isEmpty ? fallback : reasons.joined(separator: "; ") }

    func contains(reason: Int32) -> Bool { codes.contains { ERR_GET_REASON($0) == reason } }

    /// The alert the peer sent, when one of the errors is "the peer sent alert N".
    var receivedAlert: String? {
        for (code, reason) in zip(codes, reasons) where ERR_GET_REASON(code) >= SSL_AD_REASON_OFFSET {
            return reason
        }
        return nil
    }
}
