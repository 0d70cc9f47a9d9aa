// Section 4: CRC32C itself. (a) Each implementation this machine runs, at four buffer sizes,
// with a page-cache read of the same bytes as the yardstick at each size, and at two sizes
// once more with the buffer flushed from the caches first. (b) The zero-page
// scans of page streaming over regions of 4 KiB pages, next to a plain CRC32C of the same
// pages and a memcpy of them (QEMU's RAM migration moves pages without a checksum).
import BenchSupport
import VFIOBuffers
import VFIOStream

/// Per size, median seconds per buffer of each path, and of a page-cache read of the same bytes.
struct CRCPathResult {
    var size: Int
    var median: [CRC32C.Implementation: Double]
    var bareRead: Double
}

func measureCRCPaths(repetitions: Int) {
    let sizes = [("4 KiB", 4 << 10), ("64 KiB", 64 << 10), ("1 MiB", 1 << 20), ("16 MiB", 16 << 20)]
    let paths = CRC32C.available
    var results: [CRCPathResult] = []
    var checksum: UInt32 = 0
    for (_, size) in sizes {
        let fixture = CRCFixture(size: size)
        let readTarget = IOBuffer(capacity: size)  // the read lands here; the fixture stays as it is
        let file = PageCacheFile(copying: fixture.buffer, 0..<size)
        // About 32 MiB of work per timed batch (4 MiB for the table path, 15 times slower).
        let batch = { (path: CRC32C.Implementation?) in max(2, (path == .table ? 4 << 20 : 32 << 20) / size) }
        for path in paths { checksum ^= fixture.crc(path) }  // warm-up
        file.read(into: readTarget, at: 0)
        var samples: [CRC32C.Implementation?: [Double]] = [:]
        let variants: [CRC32C.Implementation?] = paths + [nil]  // nil: the page-cache read
        for repetition in 0..<repetitions {
            for variant in order(variants, repetition: repetition) {
                let seconds: Double
                if let path = variant {
                    seconds = timePerRun(batch(path)) { checksum ^= fixture.crc(path) }
                } else {
                    seconds = timePerRun(batch(nil)) { file.read(into: readTarget, at: 0) }
                }
                samples[variant, default: []].append(seconds)
            }
        }
        var medians: [CRC32C.Implementation: Double] = [:]
        for path in paths { medians[path] = median(samples[path]!) }
        results.append(CRCPathResult(size: size, median: medians, bareRead: median(samples[nil]!)))
    }

    print("CRC32C per implementation (medians of \(repetitions) repetitions, variants interleaved; active: \(CRC32C.active))")
    let header = sizes.map { $0.0.leftPad(9) }.joined()
    print("  GB/s             \(header)   × sse42 at 1 MiB   / page-cache read at 1 MiB")
    let oneMiB = results.first { $0.size == 1 << 20 }!
    for path in paths {
        let rates = results.map { format(Double($0.size) / $0.median[path]! / 1e9, 1).leftPad(9) }.joined()
        let overSSE = oneMiB.median[.sse42].map { format($0 / oneMiB.median[path]!) } ?? "-"
        let overRead = format(oneMiB.median[path]! / oneMiB.bareRead)
        print("  \(path.description.rightPad(17))\(rates)\(overSSE.leftPad(17))\(overRead.leftPad(27))")
    }
    let reads = results.map { format(Double($0.size) / $0.bareRead / 1e9, 1).leftPad(9) }.joined()
    print("  \("page-cache read".rightPad(17))\(reads)")

    // The same buffers when they are not in any cache: each run timed alone, after the caches
    // were flushed by reading 64 MiB of other memory.
    let evictor = CacheEvictor()
    var cold: [Int: [CRC32C.Implementation: Double]] = [:]
    let coldSizes = [1 << 20, 16 << 20]
    for size in coldSizes {
        let fixture = CRCFixture(size: size)
        var samples: [CRC32C.Implementation: [Double]] = [:]
        for repetition in 0..<repetitions {
            for path in order(paths.filter { $0 != .table }, repetition: repetition) {
                evictor.evict()
                samples[path, default: []].append(timePerRun(1) { checksum ^= fixture.crc(path) })
            }
        }
        cold[size] = samples.mapValues(median)
    }
    print("  not cached (GB/s)                  1 MiB   16 MiB")
    for path in paths where path != .table {
        let rates = coldSizes.map { format(Double($0) / cold[$0]![path]! / 1e9, 1).leftPad(9) }.joined()
        print("  \(path.description.rightPad(17))\("".leftPad(18))\(rates)")
    }
    consumed ^= checksum
    print("")
}

/// Per page mix and region size: median seconds per region of each operation.
struct PageScanResult {
    var mix: PageMix
    var bytes: Int
    var median: [PageOp: Double]
}

enum PageOp: String, CaseIterable {
    case fused = "fused scan (CRC of non-zero pages + bitmap)"
    case find = "find zero pages (no CRC)"
    case plain = "plain CRC32C of every page"
    case memcpy = "memcpy"
}

func measurePageScans(repetitions: Int) {
    var checksum: UInt32 = 0
    for (label, bytes) in [("1 MiB", 1 << 20), ("64 MiB", 64 << 20)] {
        var results: [PageMix: PageScanResult] = [:]
        print("Page scans over \(label) of 4 KiB pages (medians of \(repetitions) repetitions, operations interleaved; CRC32C \(CRC32C.active))")
        print("  pages                     operation                                       µs      GB/s  × plain CRC  × memcpy")
        for mix in PageMix.allCases {
            let fixture = PageFixture(mix: mix, bytes: bytes)
            let found = fixture.findZeroPages()
            precondition(found == fixture.expectedZeroPages, "page fixture \(mix): found \(found) zero pages, built \(fixture.expectedZeroPages)")
            let batch = max(2, (32 << 20) / bytes)
            checksum ^= fixture.fusedScan() ^ fixture.plainCRC()
            fixture.copy()
            var samples: [PageOp: [Double]] = [:]
            for repetition in 0..<repetitions {
                for op in order(PageOp.allCases, repetition: repetition) {
                    let seconds: Double
                    switch op {
                    case .fused: seconds = timePerRun(batch) { checksum ^= fixture.fusedScan() }
                    case .find: seconds = timePerRun(batch) { checksum ^= UInt32(truncatingIfNeeded: fixture.findZeroPages()) }
                    case .plain: seconds = timePerRun(batch) { checksum ^= fixture.plainCRC() }
                    case .memcpy: seconds = timePerRun(batch) { fixture.copy() }
                    }
                    samples[op, default: []].append(seconds)
                }
            }
            let result = PageScanResult(mix: mix, bytes: bytes, median: samples.mapValues(median))
            for op in PageOp.allCases {
                let t = result.median[op]!
                print(
                    "  \((op == .fused ? mix.rawValue : "").rightPad(26))\(op.rawValue.rightPad(46))"
                        + "\(format(t * 1e6, 1).leftPad(8))\(format(Double(bytes) / t / 1e9, 1).leftPad(10))"
                        + "\(format(t / result.median[.plain]!).leftPad(13))\(format(t / result.median[.memcpy]!).leftPad(10))")
            }
            results[mix] = result
        }
        // What the page scan promises, as ratios: a random page costs its CRC, a zero page a
        // zero scan, and finding out a page is not zero costs a look at its start.
        let m = { (mix: PageMix, op: PageOp) in results[mix]!.median[op]! }
        print("  random pages: fused / plain CRC \(format(m(.random, .fused) / m(.random, .plain)))"
            + "; zero pages: fused / find zero pages \(format(m(.zero, .fused) / m(.zero, .find)))"
            + "; random pages: find zero pages / memcpy \(format(m(.random, .find) / m(.random, .memcpy)))")
        print("")
    }
    consumed ^= checksum
}
