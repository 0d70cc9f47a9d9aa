// Section 5: the dirty bitmap walks. (a) Scanning an empty bitmap of 1 TiB of guest memory
// (32 MiB of words) with the runs walk, against one sequential read of the same words (their
// sum). (b) The runs walk of a 4 GiB guest's bitmap at each density, against copying the pages
// it finds (4 KiB memcpy per dirty page into a reused 1 MiB send buffer), the least a sender
// does with them. Runs are cut at 256 pages, the send buffer's size.
import BenchSupport
import VFIOCore

enum ScanOp: String, CaseIterable {
    case sum = "sum of the words (sequential read)"
    case runs = "runs walk"
    case pages = "dirty pages walk"
    case isEmpty = "isEmpty"
}

nonisolated(unsafe) var bitmapFold = 0

/// Returns the ratio runs walk / sum of the words, median of the per-repetition ratios.
func measureEmptyScan(repetitions: Int) -> Double {
    let pageCount = 1 << 28 // 1 TiB in 4 KiB pages: 2^22 words, 32 MiB
    let bitmap = DirtyLayout.clean.bitmap(pageCount: pageCount, seed: 0)
    let words = bitmap.words
    let batch = 8
    func run(_ op: ScanOp) -> Double {
        switch op {
        case .sum: return timePerRun(batch) { bitmapFold &+= Int(truncatingIfNeeded: sumWords(words)) }
        case .runs: return timePerRun(batch) { bitmapFold &+= walkRuns(bitmap, maxPages: 256) }
        case .pages: return timePerRun(batch) { bitmapFold &+= walkPages(bitmap) }
        case .isEmpty: return timePerRun(batch) { bitmapFold &+= bitmap.isEmpty ? 1 : 0 }
        }
    }
    for op in ScanOp.allCases { _ = run(op) } // warm-up
    var samples: [ScanOp: [Double]] = [:]
    var ratios: [Double] = []
    for repetition in 0..<repetitions {
        var this: [ScanOp: Double] = [:]
        for op in order(ScanOp.allCases, repetition: repetition) { this[op] = run(op) }
        for (op, t) in this { samples[op, default: []].append(t) }
        ratios.append(this[.runs]! / this[.sum]!)
    }
    let medians = samples.mapValues(median)
    print("Dirty bitmap, empty scan: \(pageCount) pages (1 TiB at 4 KiB), \((words.count * 8) >> 20) MiB of words (\(batch) scans per timed batch, \(repetitions) repetitions)")
    print("  operation                             median µs   best µs    GB/s  × sum")
    for op in ScanOp.allCases {
        let t = medians[op]!
        print(
            "  \(op.rawValue.rightPad(36))\(format(t * 1e6, 0).leftPad(11))\(format(samples[op]!.min()! * 1e6, 0).leftPad(10))"
                + "\(format(Double(words.count * 8) / t / 1e9, 1).leftPad(8))\(format(t / medians[.sum]!).leftPad(7))")
    }
    let ratio = median(ratios)
    print("  runs walk / sum of the words: \(format(ratio)) (median of the per-repetition ratios)")
    print("")
    return ratio
}

/// Returns runs walk / page copy per layout, median of the per-repetition ratios.
func measureWalkAgainstCopy(repetitions: Int) -> [DirtyLayout: Double] {
    let pageCount = 1 << 20 // 4 GiB of guest memory
    let copier = PageCopyFixture(pageCount: pageCount)
    let layouts = DirtyLayout.allCases.filter { $0 != .clean }
    print("Dirty bitmap, runs walk against copying the pages it finds: \(pageCount) pages (4 GiB), runs cut at 256 pages")
    print("  layout             dirty pages    runs   walk µs   copy µs   walk ns/page   walk / copy")
    var result: [DirtyLayout: Double] = [:]
    for layout in layouts {
        // Random layouts are drawn several times, so the copies do not read the same cached
        // pages over and over.
        let bitmaps = (0..<(layout.isRandom ? 8 : 1)).map { layout.bitmap(pageCount: pageCount, seed: UInt64($0) + 1) }
        let pageLists = bitmaps.map { Array($0.dirtyPages) }
        let dirty = pageLists.map(\.count).reduce(0, +) / bitmaps.count
        let runs = (try? bitmaps[0].runs(maxPages: 256))?.reduce(0) { n, _ in n + 1 } ?? 0
        let walkAll = { for bitmap in bitmaps { bitmapFold &+= walkRuns(bitmap, maxPages: 256) } }
        // Enough walks per timed batch for about 5 ms, so the clock's resolution does not matter.
        walkAll()
        let once = timePerRun(1, walkAll)
        let batch = max(1, Int(5e-3 / max(once, 1e-7)))
        copier.copy(pageLists[0]) // warm-up
        var walk: [Double] = [], copy: [Double] = [], ratios: [Double] = []
        for repetition in 0..<repetitions {
            var w = 0.0, c = 0.0
            for first in order([true, false], repetition: repetition) {
                if first {
                    w = timePerRun(batch, walkAll) / Double(bitmaps.count)
                } else {
                    c = timePerRun(1) { for pages in pageLists { copier.copy(pages) } } / Double(bitmaps.count)
                }
            }
            walk.append(w)
            copy.append(c)
            ratios.append(w / c)
        }
        let ratio = median(ratios)
        result[layout] = ratio
        print(
            "  \(layout.rawValue.rightPad(17))\(String(dirty).leftPad(12))\(String(runs).leftPad(8))"
                + "\(format(median(walk) * 1e6, 1).leftPad(10))\(format(median(copy) * 1e6, 0).leftPad(10))"
                + "\(format(median(walk) / Double(dirty) * 1e9, 2).leftPad(15))\(format(ratio, 4).leftPad(14))")
    }
    print("  (walk / copy: median over \(repetitions) repetitions of the ratio measured in that repetition)")
    print("")
    return result
}
