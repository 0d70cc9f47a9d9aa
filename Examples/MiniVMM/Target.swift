// The target side: a push-based load fed from the VMM's own frames. The devices validate their
// state when the device stream ends and stay stopped until the last RAM frame has arrived.
import Foundation
import VFIOMigration

final class TargetVMM {
    let devices: [VFIODevice]
    let ram: GuestRAM
    let socket: FileHandle
    /// What happened, in order, for the proof that resume came after the last RAM.
    private(set) var events: [String] = []
    private(set) var report: LoadReport?

    init(devices: [VFIODevice], ram: GuestRAM, socket: FileHandle) {
        self.devices = devices
        self.ram = ram
        self.socket = socket
    }

    func receive() throws {
        let load = try LoadSession(devices: devices)
        try load.begin()
        var ended = Set<Int>()
        let buffer = IOBuffer(capacity: 1 << 20)
        while let frame = try socket.receive() {
            switch frame.kind {
            case .ramPage:
                ram.store(frame.payload, at: Int(frame.index))
            case .deviceState:
                buffer.write(frame.payload, at: 0)
                try load.write(device: Int(frame.index), from: buffer, range: 0..<frame.payload.count)
            case .deviceEnd:
                try load.endDevice(Int(frame.index))
                ended.insert(Int(frame.index))
                if ended.count == devices.count {
                    report = try load.finish()
                    events.append("devices validated, stopped")
                }
            case .stopped:
                events.append("source stopped")
            case .lastRAM:
                events.append("last RAM frame (\(frame.index) pages)")
                try load.resume()
                events.append("devices resumed")
                return
            }
        }
        throw CocoaError(.coderReadCorrupt, userInfo: [NSLocalizedDescriptionKey: "the stream ended before the last RAM frame"])
    }
}
