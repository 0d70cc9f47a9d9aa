import Foundation
import Testing
@testable import VFIOKernel

@Suite struct DiscoveryPCIAddressTests {
    @Test func parsesFullAndShortForms() throws {
        let full = try PCIAddress(parsing: "0000:06:0d.0")
        #expect(full == PCIAddress(domain: 0, bus: 0x06, device: 0x0d, function: 0))
        let short = try PCIAddress(parsing: "3b:1f.7")
        #expect(short == PCIAddress(domain: 0, bus: 0x3b, device: 0x1f, function: 7))
        let wide = try PCIAddress(parsing: "10000:e1:00.3")
        #expect(wide.domain == 0x10000)
        #expect(try PCIAddress(parsing: "0000:AF:0D.1") == PCIAddress(bus: 0xaf, device: 0x0d, function: 1))
    }

    @Test func formatsLikeSysfs() {
        #expect(PCIAddress(bus: 6, device: 13, function: 0)?.description == "0000:06:0d.0")
        #expect(PCIAddress(bus: 6, device: 32, function: 0) == nil && PCIAddress(bus: 6, device: 1, function: 8) == nil, "out of range is nil, not a crash")
        #expect(PCIAddress(domain: 0x10000, bus: 0xe1, device: 0, function: 3)?.description == "10000:e1:00.3")
        #expect(PCIAddress("06:0d.0")?.description == "0000:06:0d.0")
    }

    @Test(arguments: [
        ("", "exactly one '.'"),
        ("0000:06:0d", "exactly one '.'"),
        ("0000:06:0d.0.1", "exactly one '.'"),
        ("06.0", "domain:bus:device.function"),
        ("0:0:0:0.0", "domain:bus:device.function"),
        ("0000:100:00.0", "bus '100'"),
        ("0000:zz:00.0", "bus 'zz'"),
        ("0000:06:20.0", "device 0x20 is above 0x1f"),
        ("0000:06:0d.8", "function 8 is above 7"),
        ("0000:06:0d.", "function ''"),
        ("123456789:00:00.0", "domain '123456789'"),
        ("+6:0d.0", "bus '+6'"),
    ])
    func rejectsBadStrings(text: String, reason: String) {
        #expect(PCIAddress(text) == nil)
        do {
            _ = try PCIAddress(parsing: text)
            Issue.record("\(text) parsed")
        } catch let error as DiscoveryError {
            guard case .badPCIAddress(let echoed, let why) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(echoed == text)
            #expect(why.contains(reason), "\(why)")
            #expect(error.description.contains("is not a PCI address"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func sortsByDomainBusDeviceFunction() throws {
        let texts = ["0001:00:00.0", "0000:3b:00.0", "0000:06:02.1", "0000:06:02.0", "0000:00:1f.3"]
        let sorted = try texts.map { try PCIAddress(parsing: $0) }.sorted().map(\.description)
        #expect(sorted == ["0000:00:1f.3", "0000:06:02.0", "0000:06:02.1", "0000:3b:00.0", "0001:00:00.0"])
    }

    @Test func codesAsItsTextForm() throws {
        let address = PCIAddress(bus: 0x3b, device: 0, function: 1)!
        let data = try JSONEncoder().encode([address])
        #expect(String(decoding: data, as: UTF8.self) == "[\"0000:3b:00.1\"]")
        #expect(try JSONDecoder().decode([PCIAddress].self, from: data) == [address])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([PCIAddress].self, from: Data("[\"0000:3b:40.1\"]".utf8))
        }
    }
}
