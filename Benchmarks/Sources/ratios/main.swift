// vfio-bench-ratios: measures each comparison the roadmap sets a target for, side by side in
// this one process, repeats it with the variants interleaved (their order rotating) so drift
// and noise of the shared machine fall on all of them alike, and prints the medians, the
// ratios and whether each target is met. Build in release:
//
//     cd Benchmarks && swift run -c release vfio-bench-ratios
//
// Targets (roadmap): a framed save runs at ≥ 0.90 of a raw copy through the same real sink;
// framing and CRC32C cost at most half of a bare read; peak memory does not depend on the
// device's state size; the runs walk of an empty 1 TiB dirty bitmap costs at most 2× a
// sequential read of its words, and at 0.1–100 % density under 5 % of copying the pages it
// finds; TLS over loopback moves ≥ 0.70 of plain TCP's bytes per second. The exit status is 0
// whether or not targets are met: this reports.
import BenchSupport
import Foundation
import VFIOStream

let options = Options.parse(Array(CommandLine.arguments.dropFirst()))
var verdicts: [Verdict] = []

print("vfio-bench-ratios  \(ISO8601DateFormatter().string(from: Date()))")
print("machine: \(machineLine()); CRC32C \(CRC32C.active) (available: \(CRC32C.available.map(\.description).joined(separator: ", ")))")
print("load average at start: \(loadAverage())")
print("")

var frameSecondsPerMiB: Double?
if options.sections.contains(.codec) {
    for (label, size) in [("1 MiB", 1 << 20), ("64 KiB", 64 << 10)] {
        let result = measureCodec(label: label, chunkSize: size, repetitions: options.repetitions)
        if size == 1 << 20 { frameSecondsPerMiB = result.median[.frame]! }
        verdicts.append(Verdict(
            name: "framing + CRC32C / bare read (page cache), \(label)", measured: format(result.frameOverRead),
            target: "≤ 0.50", pass: result.frameOverRead <= 0.5))
    }
}

if options.sections.contains(.save) {
    do {
        let shm = "/dev/shm/vfio-bench-\(getpid())"
        defer { unlink(shm) }
        let runs: [(preCopy: Bool, path: String, name: String)] = [
            (false, "/dev/null", "/dev/null"), (true, "/dev/null", "/dev/null"), (false, shm, "tmpfs file"),
        ]
        for run in runs {
            let result = try measureSave(
                preCopy: run.preCopy, state: options.saveState, sinkPath: run.path, sinkName: run.name,
                repetitions: options.saveRepetitions)
            verdicts.append(Verdict(
                name: "framed save / raw copy [\(result.flags)] → \(run.name)", measured: format(result.framedOverRaw, 3),
                target: "≥ 0.90", pass: result.framedOverRaw >= 0.9))
            verdicts.append(Verdict(
                name: "pipelined save / raw copy [\(result.flags)] → \(run.name)", measured: format(result.pipelinedOverRaw, 3),
                target: "≥ 0.97", pass: result.pipelinedOverRaw >= 0.97))
            // The other reading of "bare read": the device's own data fd, read by the session.
            if !run.preCopy && run.path == "/dev/null", let frame = frameSecondsPerMiB {
                let deviceReadPerMiB = Double(1 << 20) / result.median[.discard]!
                let share = frame / deviceReadPerMiB
                print("framing + CRC32C per MiB (codec, 1 MiB chunks) / mock device read per MiB: \(format(share))")
                print("")
                verdicts.append(Verdict(
                    name: "framing + CRC32C / mock device read, 1 MiB", measured: format(share), target: "≤ 0.50",
                    pass: share <= 0.5))
            }
        }
    } catch {
        fail("save comparison failed: \(error)")
    }
}

if options.sections.contains(.memory) {
    do {
        let result = try measureMemory(sizes: ["64MiB", "1GiB"], repetitions: options.memoryRepetitions)
        let ratio = result.peak["1GiB"]! / result.peak["64MiB"]!
        let extra = (result.growth["1GiB"]! - result.growth["64MiB"]!) / Double(1 << 20)
        print("  peak RSS 1 GiB / 64 MiB: \(format(ratio, 3)); extra growth for 16× the state: \(format(extra, 1)) MiB")
        print("")
        // Size-independent: 16× the state may cost a few MiB of slack (page and allocator
        // granularity), nothing that scales with it.
        verdicts.append(Verdict(
            name: "peak RSS, 1 GiB state / 64 MiB state", measured: "\(format(ratio, 3)) (\(extra >= 0 ? "+" : "")\(format(extra, 1)) MiB)",
            target: "≤ 1.05, ≤ +4 MiB", pass: ratio <= 1.05 && extra <= 4))
    } catch {
        fail("peak memory measurement failed: \(error)")
    }
}

if options.sections.contains(.crc) {
    measureCRCPaths(repetitions: options.repetitions)
    measurePageScans(repetitions: options.repetitions)
}

if options.sections.contains(.transport) {
    do {
        let result = try measureTransport(bytes: options.transportBytes, repetitions: options.transportRepetitions)
        verdicts.append(Verdict(
            name: "TLS 1.3 AES-128-GCM / plain TCP, loopback, wall", measured: format(result.wallRatio),
            target: "≥ 0.70", pass: result.wallRatio >= 0.7))
        verdicts.append(Verdict(
            name: "the same, CPU-bound (a core per end)", measured: format(result.boundRatio),
            target: "≥ 0.70", pass: result.boundRatio >= 0.7))
    } catch {
        fail("transport comparison failed: \(error)")
    }
}

if options.sections.contains(.bitmap) {
    let scan = measureEmptyScan(repetitions: options.repetitions)
    verdicts.append(Verdict(
        name: "runs walk of an empty 32 MiB bitmap / sum of its words", measured: format(scan), target: "≤ 2.00",
        pass: scan <= 2))
    let walk = measureWalkAgainstCopy(repetitions: options.repetitions)
    for layout in [DirtyLayout.permille, .percent, .tenPercent, .full] {
        let ratio = walk[layout]!
        verdicts.append(Verdict(
            name: "runs walk / copying its pages, \(layout.rawValue) dirty", measured: format(ratio, 4), target: "< 0.05",
            pass: ratio < 0.05))
    }
}

if options.sections.contains(.pages) {
    do {
        let result = try measurePages(mib: options.pagesMiB, repetitions: options.repetitions)
        for variant in [PageVariant.inPlace, .copied] {
            verdicts.append(Verdict(
                name: "\(variant.rawValue) / memcpy", measured: format(result.ratio[variant]!, 3), target: "≥ 0.55",
                pass: result.ratio[variant]! >= 0.55))
        }
    } catch {
        fail("page streaming comparison failed: \(error)")
    }
}

if options.sections.contains(.qemu) {
    do {
        if let result = try measureQEMU(mib: options.qemuMiB, smallMiB: options.qemuMiB / 8, repetitions: options.qemuRepetitions) {
            for (variant, target) in [(SaveVariant.checksums, 1.0), (.stable, 1.0), (.noChecksums, 1.2)] {
                verdicts.append(Verdict(
                    name: "\(variant.rawValue) / QEMU", measured: format(result.ratio[variant]!, 3), target: "≥ \(format(target))",
                    pass: result.ratio[variant]! >= target))
            }
            let large = result.peakAnonymous[options.qemuMiB]!, small = result.peakAnonymous[options.qemuMiB / 8]!
            let extra = (large - small) / Double(1 << 20)
            verdicts.append(Verdict(
                name: "engine peak anon. memory, 8× the guest memory", measured: "\(extra >= 0 ? "+" : "")\(format(extra, 1)) MiB",
                target: "≤ +4 MiB", pass: extra <= 4))
        }
    } catch {
        fail("QEMU comparison failed: \(error)")
    }
}

print("load average at end: \(loadAverage())")
print("")
print("Targets")
for verdict in verdicts {
    print("  \(verdict.pass ? "PASS" : "FAIL")  \(verdict.name.rightPad(56))\(verdict.measured.leftPad(18))   target \(verdict.target)")
}
print("targets met: \(verdicts.filter(\.pass).count) of \(verdicts.count)")
