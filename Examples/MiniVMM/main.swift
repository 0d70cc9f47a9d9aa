// mini-vmm: how a VMM embeds the engine. It owns its guest RAM and its own migration socket;
// the engine moves the devices. Step by step: bounded device pre-copy iterations between the
// VMM's RAM rounds, device state multiplexed into the VMM's frames, a push-based load on the
// other end, and the target devices resumed only after the last RAM frame. Then it checks that
// the target's RAM and device state equal the source's.
//
// A real VMM opens real devices (`DeviceEnvironment().open("0000:3b:00.2")`); this example runs
// anywhere on emulated ones (`mock:`), from the VFIOMockDevices test product.
import Foundation
import Synchronization
import VFIOMigration
import VFIOMockDevices

/// What the target thread hands back once its load is done.
struct TargetOutcome: Sendable {
    var pages: [Data] = []
    var events: [String] = []
    var failure: String?
}

// A VMM ignores SIGPIPE: a peer that went away is an error on the write, not the process's end.
signal(SIGPIPE, SIG_IGN)
let environment = DeviceEnvironment.withMockDevices()
let options = "state=2MiB&flags=stop-copy,p2p,pre-copy&dirty-rate=2/1MiB"

do {
    let sources = try (0..<2).map { try environment.open("mock:vm-src\($0)?\(options)&seed=\(10 + $0)") }
    let targets = try (0..<2).map { try environment.open("mock:vm-dst\($0)?\(options)&seed=\(20 + $0)") }
    let sourceRAM = GuestRAM(pageCount: 512, seed: 42)
    let wire = try SocketPair()

    // The target runs on its own thread, as it would on its own host.
    let outcome = Mutex(TargetOutcome())
    let received = DispatchSemaphore(value: 0)
    let targetSocket = wire.target
    Thread {
        let target = TargetVMM(devices: targets, ram: GuestRAM(emptyWithPageCount: 512), socket: targetSocket)
        var result = TargetOutcome()
        do {
            try target.receive()
        } catch {
            result.failure = "\(error)"
            // Wake the source: its next send fails (EPIPE) instead of blocking on a full socket.
            shutdown(targetSocket.fileDescriptor, Int32(SHUT_RDWR))
        }
        result.pages = target.ram.pages
        result.events = target.events
        outcome.withLock { $0 = result }
        received.signal()
    }.start()

    let source = SourceVMM(devices: sources, ram: sourceRAM, sink: FrameSink(wire.source)) { round in
        // The guest runs: fewer writes each round, as a converging workload does.
        sourceRAM.guestWrites(max(0, 64 >> round))
        for device in sources { device.mock?.mutateState(blocks: max(0, 4 - round)) }
    }
    let saved = try source.migrate()
    received.wait()
    let target = outcome.withLock { $0 }
    if let failure = target.failure {
        print("mini-vmm: the target failed: \(failure)")
        exit(1)
    }

    let ramEqual = sourceRAM.pages == target.pages
    let devicesEqual = zip(sources, targets).allSatisfy { $0.mock!.stateDigest == $1.mock!.stateDigest }
    let targetStates = try targets.map { try $0.currentState() }
    let sourceStates = try sources.map { try $0.currentState() }
    print("device state: \(saved.totalBytes >> 10) KiB sent in \(saved.devices.map(\.chunks).reduce(0, +)) chunks, "
          + "downtime \(Int(saved.timings.downtime.seconds * 1e6)) µs")
    print("target events: " + target.events.joined(separator: " -> "))
    print("RAM \(ramEqual ? "identical" : "DIFFERS"); devices \(devicesEqual ? "identical" : "DIFFER"); "
          + "sources \(sourceStates.map(\.description).joined(separator: ",")), targets \(targetStates.map(\.description).joined(separator: ","))")
    let resumedLast = target.events.last == "devices resumed"
        && (target.events.firstIndex { $0.hasPrefix("last RAM") } ?? .max) < (target.events.firstIndex(of: "devices resumed") ?? -1)
    guard ramEqual, devicesEqual, resumedLast, targetStates.allSatisfy({ $0 == .running }), sourceStates.allSatisfy({ $0 == .stop }) else {
        print("mini-vmm: the migration did not end as expected")
        exit(1)
    }
    print("mini-vmm: migration complete")
} catch let error as VFIOError {
    // Where every device was left, as values: a VMM decides from these whether its guest can go on.
    print("mini-vmm: \(error)")
    for outcome in error.outcomes {
        print("  \(outcome.role) \(outcome.device): \(outcome.finalState)\(outcome.isRunning ? " (running)" : "")")
    }
    exit(1)
} catch {
    print("mini-vmm: \(error)")
    exit(1)
}
