// The mini VMM's guest memory: pages it owns and tracks itself (its "KVM dirty log"). The
// engine never sees them; they travel in the VMM's own frames between device iterations.
import Foundation

final class GuestRAM {
    static let pageSize = 4096
    private(set) var pages: [Data]
    private(set) var dirty: Set<Int>
    private var generator: UInt64

    init(pageCount: Int, seed: UInt64) {
        generator = seed
        pages = []
        dirty = Set(0..<pageCount)
        pages = (0..<pageCount).map { _ in Data(count: Self.pageSize) }
        for i in 0..<pageCount { pages[i] = fill() }
    }

    /// A target's memory: zeroed, nothing dirty.
    init(emptyWithPageCount pageCount: Int) {
        generator = 0
        pages = Array(repeating: Data(count: Self.pageSize), count: pageCount)
        dirty = []
    }

    /// The running guest writes `count` pages.
    func guestWrites(_ count: Int) {
        for _ in 0..<count {
            let page = Int(next() % UInt64(pages.count))
            pages[page] = fill()
            dirty.insert(page)
        }
    }

    /// Takes the dirty set (it restarts empty), in page order.
    func harvest() -> [Int] {
        defer { dirty.removeAll() }
        return dirty.sorted()
    }

    func store(_ data: Data, at page: Int) { pages[page] = data }

    private func next() -> UInt64 {
        generator = generator &* 6364136223846793005 &+ 1442695040888963407
        return generator >> 11
    }

    private func fill() -> Data {
        let base = next()
        return Data((0..<Self.pageSize).map { UInt8(truncatingIfNeeded: base &+ UInt64($0) &* 0x9E37) })
    }
}
