// DirtyBitmap's geometry, bit access and walks, each against the page-by-page model.
import Testing
import VFIOCore

@Suite struct DirtyBitmapTests {
    @Test func layoutIsTheKernels() throws {
        var bitmap = try DirtyBitmap(pageCount: 200, pageSize: 4096)
        for page in [0, 63, 64, 130, 199] { try bitmap.insert(page) }
        #expect(bitmap.words == [1 | 1 << 63, 1, 1 << 2, 1 << 7])
    }

    @Test(arguments: [0, 1, 63, 64, 65, 4097])
    func geometry(pageCount: Int) throws {
        let bitmap = try DirtyBitmap(pageCount: pageCount, pageSize: 1 << 16)
        #expect(bitmap.pageCount == pageCount)
        #expect(bitmap.pageSize == 1 << 16)
        #expect(bitmap.words.count == (pageCount + 63) / 64)
        #expect(bitmap.words.allSatisfy { $0 == 0 })
        #expect(bitmap.byteCount == UInt64(pageCount) << 16)
        #expect(bitmap.isEmpty)
        #expect(bitmap.dirtyPageCount == 0)
        #expect(Array(bitmap.dirtyPages).isEmpty)
        #expect(Array(try bitmap.runs()).isEmpty)
    }

    @Test func pageSizesTheKernelRefusesThrow() throws {
        for size: UInt64 in [0, 1, 512, 2048, 4095, 4097, 12288, 3 << 20] {
            #expect(throws: DirtyBitmapError.invalidPageSize(size)) { try DirtyBitmap(pageCount: 1, pageSize: size) }
            #expect(throws: DirtyBitmapError.invalidPageSize(size)) { try DirtyBitmap(words: [0], pageCount: 1, pageSize: size) }
        }
        for size: UInt64 in [4096, 8192, 2 << 20, 1 << 30, 1 << 63] {
            #expect(try DirtyBitmap(pageCount: 1, pageSize: size).byteCount == size)
        }
    }

    @Test func pageCountsThatCannotBeMemoryThrow() {
        #expect(throws: DirtyBitmapError.invalidPageCount(-1, pageSize: 4096)) { try DirtyBitmap(pageCount: -1, pageSize: 4096) }
        // 2^52 pages of 4 KiB is 2^64 bytes: one past what a byte count can hold.
        #expect(throws: DirtyBitmapError.invalidPageCount(1 << 52, pageSize: 4096)) {
            try DirtyBitmap(words: [], pageCount: 1 << 52, pageSize: 4096)
        }
    }

    @Test(arguments: [1, 63, 64, 65, 4097])
    func adoptingKernelWordsClearsTheSpareBits(pageCount: Int) throws {
        let words = [UInt64](repeating: .max, count: (pageCount + 63) / 64)
        let bitmap = try DirtyBitmap(words: words, pageCount: pageCount, pageSize: 4096)
        expectTailClear(bitmap)
        #expect(bitmap.dirtyPageCount == pageCount)
        #expect(Array(try bitmap.runs()) == [DirtyRun(firstPage: 0, pageCount: pageCount)])
    }

    @Test func adoptingTheWrongNumberOfWordsThrows() {
        #expect(throws: DirtyBitmapError.wordCountMismatch(words: 1, expected: 2, pageCount: 65)) {
            try DirtyBitmap(words: [0], pageCount: 65, pageSize: 4096)
        }
        #expect(throws: DirtyBitmapError.wordCountMismatch(words: 2, expected: 1, pageCount: 64)) {
            try DirtyBitmap(words: [0, 0], pageCount: 64, pageSize: 4096)
        }
    }

    /// What the kernel backend does: lend `&bitmap.words` to a call that fills it.
    @Test func lentWordsComeBackWithTheInvariant() throws {
        func kernelFillsEverything(_ buffer: inout [UInt64]) { for i in buffer.indices { buffer[i] = .max } }
        var bitmap = try DirtyBitmap(pageCount: 100, pageSize: 4096)
        kernelFillsEverything(&bitmap.words)
        expectTailClear(bitmap)
        #expect(bitmap.dirtyPageCount == 100)

        func grows(_ buffer: inout [UInt64]) { buffer.append(.max) }
        grows(&bitmap.words)
        expectTailClear(bitmap)
        #expect(bitmap.dirtyPageCount == 100)

        func shrinks(_ buffer: inout [UInt64]) { buffer.removeLast() }
        shrinks(&bitmap.words)
        expectTailClear(bitmap)
        #expect(bitmap.dirtyPageCount == 64)
    }

    @Test(arguments: DirtyPattern.allCases)
    func singlePagesMatchTheModel(pattern: DirtyPattern) throws {
        try forEveryCount(of: pattern) { model, rng in
            var model = model
            var bitmap = try Reference.bitmap(model)
            for _ in 0..<200 {
                let page = Int.random(in: 0..<model.count, using: &rng)
                if Bool.random(using: &rng) {
                    #expect(try bitmap.insert(page) == !model[page])
                    model[page] = true
                } else {
                    #expect(try bitmap.remove(page) == model[page])
                    model[page] = false
                }
                #expect(try bitmap[page] == model[page])
            }
            expectPages(bitmap, model)
            expectSameElements(try Reference.pages(of: bitmap), model, "pages read back one by one")
            #expect(bitmap.dirtyPageCount == model.filter { $0 }.count)
            #expect(bitmap.isEmpty == !model.contains(true))
            expectTailClear(bitmap)
        }
    }

    @Test(arguments: DirtyPattern.allCases)
    func pageRangesMatchTheModel(pattern: DirtyPattern) throws {
        try forEveryCount(of: pattern) { model, rng in
            var model = model
            var bitmap = try Reference.bitmap(model)
            for _ in 0..<30 {
                let range = Reference.range(within: model.count, using: &rng)
                let dirty = Bool.random(using: &rng)
                if dirty { try bitmap.insert(pages: range) } else { try bitmap.remove(pages: range) }
                for page in range { model[page] = dirty }
                expectPages(bitmap, model, "\(dirty ? "insert" : "remove") \(range)")
                expectTailClear(bitmap)
            }
        }
    }

    @Test(arguments: DirtyPattern.allCases)
    func wholeBitmapOperations(pattern: DirtyPattern) throws {
        try forEveryCount(of: pattern) { model, _ in
            var bitmap = try Reference.bitmap(model)
            #expect(bitmap.dirtyPageCount == model.filter { $0 }.count)
            #expect(bitmap.isEmpty == !model.contains(true))
            bitmap.insertAll()
            #expect(bitmap.dirtyPageCount == model.count)
            expectPages(bitmap, [Bool](repeating: true, count: model.count))
            expectTailClear(bitmap)
            bitmap.removeAll()
            #expect(bitmap.isEmpty)
            #expect(bitmap.words.count == (model.count + 63) / 64)
        }
    }

    @Test func misuseThrowsAndChangesNothing() throws {
        var bitmap = try Reference.bitmap((0..<65).map { $0 % 3 == 0 })
        let before = bitmap
        for page in [-1, 65, 66, Int.max, Int.min] {
            #expect(throws: DirtyBitmapError.pageOutOfRange(page: page, pageCount: 65)) { try bitmap.insert(page) }
            #expect(throws: DirtyBitmapError.pageOutOfRange(page: page, pageCount: 65)) { try bitmap.remove(page) }
            #expect(throws: DirtyBitmapError.pageOutOfRange(page: page, pageCount: 65)) { try bitmap[page] }
        }
        for range in [-1..<3, 60..<66, 65..<70, -5 ..< -1] {
            #expect(throws: DirtyBitmapError.rangeOutOfRange(range, pageCount: 65)) { try bitmap.insert(pages: range) }
            #expect(throws: DirtyBitmapError.rangeOutOfRange(range, pageCount: 65)) { try bitmap.remove(pages: range) }
        }
        #expect(throws: DirtyBitmapError.invalidRunLimit(0)) { try bitmap.runs(maxPages: 0) }
        #expect(bitmap == before)
        // An empty range at the very end is inside the bitmap.
        try bitmap.insert(pages: 65..<65)
        #expect(bitmap == before)
    }

    @Test(arguments: DirtyPattern.allCases)
    func dirtyPagesWalkMatchesTheModel(pattern: DirtyPattern) throws {
        try forEveryCount(of: pattern) { model, _ in
            let bitmap = try Reference.bitmap(model)
            expectSameElements(Array(bitmap.dirtyPages), Reference.dirtyIndexes(model), "\(model.count) pages")
            // An exhausted iterator stays exhausted.
            var iterator = bitmap.dirtyPages.makeIterator()
            while iterator.next() != nil {}
            #expect(iterator.next() == nil)
        }
    }

    @Test(arguments: DirtyPattern.allCases)
    func runsMatchTheModel(pattern: DirtyPattern) throws {
        try forEveryCount(of: pattern) { model, _ in
            let bitmap = try Reference.bitmap(model)
            for maxPages in [1, 2, 3, 63, 64, 65, 256, Int.max] {
                let runs = Array(try bitmap.runs(maxPages: maxPages))
                expectSameElements(runs, Reference.runs(model, maxPages: maxPages), "maxPages \(maxPages), \(model.count) pages")
                var iterator = try bitmap.runs(maxPages: maxPages).makeIterator()
                while iterator.next() != nil {}
                #expect(iterator.next() == nil)
            }
            // Unsplit runs are maximal: never empty, never touching the next one.
            let runs = Array(try bitmap.runs())
            #expect(runs.allSatisfy { $0.pageCount > 0 })
            #expect(zip(runs, runs.dropFirst()).allSatisfy { $0.pages.upperBound < $1.firstPage })
        }
    }

    /// Runs crossing many full words, and ending exactly on and just past word boundaries.
    @Test func longRunsAcrossWords() throws {
        for (start, end) in [(0, 64), (0, 128), (5, 64 * 9), (63, 65), (64, 129), (1, 4096), (70, 4097)] {
            var model = [Bool](repeating: false, count: 4097)
            for page in start..<end { model[page] = true }
            let bitmap = try Reference.bitmap(model)
            #expect(Array(try bitmap.runs()) == [DirtyRun(firstPage: start, pageCount: end - start)])
            #expect(Array(try bitmap.runs(maxPages: 100)) == Reference.runs(model, maxPages: 100))
        }
    }

    /// Every start and end bit position within and across words, with a second run one clean
    /// page later, so each way a run can begin and end is walked at least once.
    @Test func everyRunPosition() throws {
        for start in 0..<70 {
            for length in 1...140 {
                var model = [Bool](repeating: false, count: 260)
                for page in start..<(start + length) { model[page] = true }
                for page in (start + length + 1)..<(start + length + 3) { model[page] = true }
                let bitmap = try Reference.bitmap(model)
                let expected = [DirtyRun(firstPage: start, pageCount: length), DirtyRun(firstPage: start + length + 1, pageCount: 2)]
                let runs = Array(try bitmap.runs())
                if runs != expected { Issue.record("run \(start)..<\(start + length): \(runs)"); return }
                let pages = Array(bitmap.dirtyPages)
                if pages != Reference.dirtyIndexes(model) { Issue.record("run \(start)..<\(start + length): pages \(pages)"); return }
            }
        }
    }

    /// One dirty page at every position of the first 17 words, and one near the end: the
    /// walks find it wherever it sits in the groups of words they skip at once.
    @Test func aLoneDirtyPageIsFoundAnywhere() throws {
        for page in Array(0..<(17 * 64)) + [4000, 4095] {
            var bitmap = try DirtyBitmap(pageCount: 4096, pageSize: 4096)
            try bitmap.insert(page)
            #expect(Array(bitmap.dirtyPages) == [page])
            #expect(Array(try bitmap.runs()) == [DirtyRun(firstPage: page, pageCount: 1)])
            #expect(!bitmap.isEmpty && bitmap.dirtyPageCount == 1)
        }
    }

    @Test func equalBitmapsHashAlike() throws {
        let model = (0..<300).map { $0 % 7 == 0 }
        let a = try Reference.bitmap(model), b = try Reference.bitmap(model)
        #expect(a == b && a.hashValue == b.hashValue)
        var c = b
        try c.insert(1)
        #expect(a != c)
        #expect(try Reference.bitmap(model, pageSize: 8192) != a)
    }

    @Test func errorsSayWhatWasWrong() {
        #expect(DirtyBitmapError.pageOutOfRange(page: 70, pageCount: 65).description.contains("page 70"))
        #expect(DirtyBitmapError.invalidPageSize(12288).description.contains("12288"))
        let mismatch = DirtyBitmapError.geometryMismatch(pageSize: 4096, pageCount: 10, otherPageSize: 4096, otherPageCount: 12)
        #expect(mismatch.description.contains("page count 10 vs 12"))
        #expect(!mismatch.description.contains("page size"))
    }
}
