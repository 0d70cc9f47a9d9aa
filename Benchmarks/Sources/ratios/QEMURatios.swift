// Section "qemu": the engine's save of guest memory against QEMU's own RAM migration of the
// same bytes. QEMU (Debian's qemu-system-x86_64) maps a memory-backend-file of pseudo-random
// pages on tmpfs with the guest stopped (-S, no kernel) and migrates into an open /dev/null
// handed over QMP (Benchmarks/qemu/qemu-ram-save.py); the engine maps the same file read-only
// and saves it, with a mock device, through Migration.save into /dev/null. The mapping is made
// before the clock starts on both sides (QEMU maps its RAM at start-up). Variants interleave.
// Peak memory: the engine's anonymous memory (RssAnon, sampled during the save), for two
// memory sizes; the mapped file is the guest's RAM, not the engine's.
import BenchSupport
import Foundation
import VFIOCore
import VFIOKernel
import VFIOMigration
import VFIOMockDevices

enum SaveVariant: String, CaseIterable {
    case qemu = "QEMU 7.2 RAM migration (fd: /dev/null)"
    case checksums = "engine, CRC32C, live-page copy (default)"
    case stable = "engine, CRC32C, paused guest (no copy)"
    case noChecksums = "engine, no record checksums"
}

struct QEMUResult {
    var median: [SaveVariant: Double]
    var ratio: [SaveVariant: Double]
    var peakAnonymous: [Int: Double]
}

/// A tmpfs file of `mib` MiB of pseudo-random bytes (no zero pages).
func makeGuestFile(mib: Int) throws -> String {
    let path = "/dev/shm/vfio-bench-guest-\(getpid())-\(mib)"
    FileManager.default.createFile(atPath: path, contents: nil)
    guard let handle = FileHandle(forWritingAtPath: path) else { fail("cannot create \(path)") }
    defer { try? handle.close() }
    let piece = IOBuffer(capacity: 64 << 20)
    for i in 0..<(mib / 64) {
        fillPseudoRandom(piece, 0..<piece.capacity, seed: UInt64(i + 1))
        try handle.write(contentsOf: piece.bytes(0..<piece.capacity))
    }
    return path
}

func engineSave(path: String, mib: Int, variant: SaveVariant, name: String) throws -> (seconds: Double, peakAnonymous: Int) {
    let env = DeviceEnvironment.withMockDevices()
    let device = try env.open("mock:\(name)?state=64KiB&flags=stop-copy,p2p,pre-copy")
    let region = try GuestMemoryRegion.mapping(file: path, iova: 0x1_0000_0000, pageSize: 4096, writable: false)
    let memory = try GuestMemory([region])
    let sink = try FileChannel.creating("/dev/null")
    let sampler = AnonymousPeakSampler()
    let clock = ContinuousClock()
    let start = clock.now
    let result = try Migration.save(
        [device], to: sink, options: SaveOptions(chunkSize: 1 << 20), memory: memory,
        memoryOptions: Migration.MemoryOptions(stableDuringPreCopy: variant == .stable), recordChecksums: variant == .noChecksums ? .off : .on)
    let took = clock.now - start
    let peak = sampler.stop()
    guard let sent = result.report.memory, sent.preCopyBytes + sent.finalBytes >= UInt64(mib) << 20 else { fail("engine save sent too little: \(String(describing: result.report.memory))") }
    return (took.seconds, peak)
}

func qemuSave(path: String, mib: Int) throws -> Double {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../qemu/qemu-ram-save.py").standardized.path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments = [script, path, "\(mib)"]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0,
          let json = try JSONSerialization.jsonObject(with: output) as? [String: Any], let wall = json["wall"] as? Double
    else { fail("qemu-ram-save.py failed (status \(process.terminationStatus)): \(String(decoding: output, as: UTF8.self))") }
    return wall
}

/// Samples RssAnon every 2 ms on its own thread until stopped; returns the highest reading.
final class AnonymousPeakSampler: @unchecked Sendable {
    private let lock = NSLock()
    private var peak = ResidentMemory.anonymous
    private var running = true
    private let done = DispatchSemaphore(value: 0)

    init() {
        Thread { [self] in
            while lock.withLock({ running }) {
                let now = ResidentMemory.anonymous
                lock.withLock { peak = max(peak, now) }
                usleep(2000)
            }
            done.signal()
        }.start()
    }

    func stop() -> Int {
        lock.withLock { running = false }
        done.wait()
        return lock.withLock { max(peak, ResidentMemory.anonymous) }
    }
}

func measureQEMU(mib: Int, smallMiB: Int, repetitions: Int) throws -> QEMUResult? {
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64") else {
        print("QEMU comparison skipped: /usr/bin/qemu-system-x86_64 missing (apt-get install qemu-system-x86)")
        print("")
        return nil
    }
    let path = try makeGuestFile(mib: mib)
    defer { unlink(path) }
    let small = try makeGuestFile(mib: smallMiB)
    defer { unlink(small) }
    let bytes = Double(mib << 20)
    var samples: [SaveVariant: [Double]] = [:]
    var ratios: [SaveVariant: [Double]] = [:]
    var peaks: [Int: [Double]] = [:]
    for repetition in 0..<repetitions {
        var this: [SaveVariant: Double] = [:]
        for variant in order(SaveVariant.allCases, repetition: repetition) {
            if variant == .qemu {
                this[variant] = bytes / (try qemuSave(path: path, mib: mib))
            } else {
                let run = try engineSave(path: path, mib: mib, variant: variant, name: "q\(repetition)\(variant)")
                this[variant] = bytes / run.seconds
                if variant == .checksums { peaks[mib, default: []].append(Double(run.peakAnonymous)) }
            }
        }
        let smallRun = try engineSave(path: small, mib: smallMiB, variant: .checksums, name: "s\(repetition)")
        peaks[smallMiB, default: []].append(Double(smallRun.peakAnonymous))
        for (variant, rate) in this {
            samples[variant, default: []].append(rate)
            ratios[variant, default: []].append(rate / this[.qemu]!)
        }
        print("  repetition \(repetition + 1): " + SaveVariant.allCases.map { "\(format(this[$0]! / 1e9)) GB/s" }.joined(separator: ", "))
    }
    let result = QEMUResult(median: samples.mapValues(median), ratio: ratios.mapValues(median), peakAnonymous: peaks.mapValues(median))
    print("Saving \(mib) MiB of guest memory (tmpfs memory-backend-file, pseudo-random pages) to /dev/null (\(repetitions) repetitions, interleaved; medians)")
    for variant in SaveVariant.allCases {
        print("  \(variant.rawValue.rightPad(44)) \(format(result.median[variant]! / 1e9)) GB/s   ratio to QEMU \(format(result.ratio[variant]!, 3))")
    }
    print("  engine peak anonymous memory: \(format(result.peakAnonymous[smallMiB]! / Double(1 << 20), 1)) MiB saving \(smallMiB) MiB, \(format(result.peakAnonymous[mib]! / Double(1 << 20), 1)) MiB saving \(mib) MiB")
    print("")
    return result
}
