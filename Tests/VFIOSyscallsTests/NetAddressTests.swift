// "HOST:PORT" parsing as the command line spells addresses.
import Testing
import VFIOSyscalls

@Suite struct NetAddressTests {
    @Test func parsesNamesIPv4AndBracketedIPv6() throws {
        #expect(try NetworkAddress(parsing: "receiver.example:4444") == NetworkAddress(host: "receiver.example", port: 4444))
        #expect(try NetworkAddress(parsing: "10.1.2.3:0") == NetworkAddress(host: "10.1.2.3", port: 0))
        #expect(try NetworkAddress(parsing: "[::1]:65535") == NetworkAddress(host: "::1", port: 65535))
        #expect(try NetworkAddress(parsing: "[fe80::1%eth0]:22").host == "fe80::1%eth0")
    }

    @Test func descriptionPutsIPv6InBrackets() throws {
        #expect(NetworkAddress(host: "::1", port: 80).description == "[::1]:80")
        #expect(NetworkAddress(host: "127.0.0.1", port: 80).description == "127.0.0.1:80")
        for text in ["[2001:db8::7]:4444", "host.example:1"] {
            #expect(try NetworkAddress(parsing: text).description == text)
        }
    }

    @Test(arguments: [
        ("4444", "expected HOST:PORT"),
        ("::1:4444", "needs brackets"),
        ("[::1]4444", "expected ':PORT'"),
        ("[::1:4444", "closing ']'"),
        (":4444", "empty host"),
        ("host:", "port ''"),
        ("host:65536", "port '65536'"),
        ("host:-1", "port '-1'"),
        ("host:+80", "port '+80'"),
        ("ho st:80", "contains a character"),
    ])
    func rejectsMalformedAddresses(text: String, reason: String) {
        #expect {
            try NetworkAddress(parsing: text)
        } throws: { error in
            let error = error as? NetworkAddressError
            return error?.text == text && error?.reason.contains(reason) == true
        }
    }
}
