// DirtyBitmap's union, page-size conversion, slices and partitions against the model.
import Testing
import VFIOCore

@Suite struct DirtyBitmapAlgebraTests {
    @Test(arguments: DirtyPattern.allCases)
    func unionIsPageByPageOr(pattern: DirtyPattern) throws {
        try forEveryCount(of: pattern) { model, rng in
            let other = DirtyPattern.allCases.randomElement(using: &rng)!.pages(count: model.count, using: &rng)
            let merged = zip(model, other).map { $0 || $1 }
            var bitmap = try Reference.bitmap(model)
            expectPages(try bitmap.union(Reference.bitmap(other)), merged)
            try bitmap.formUnion(Reference.bitmap(other))
            expectPages(bitmap, merged)
            expectTailClear(bitmap)
        }
    }

    @Test func unionOfDifferentGeometriesThrows() throws {
        var bitmap = try DirtyBitmap(pageCount: 100, pageSize: 4096)
        let before = bitmap
        let longer = try DirtyBitmap(pageCount: 101, pageSize: 4096)
        let coarser = try DirtyBitmap(pageCount: 100, pageSize: 8192)
        #expect(throws: DirtyBitmapError.geometryMismatch(pageSize: 4096, pageCount: 100, otherPageSize: 4096, otherPageCount: 101)) {
            try bitmap.formUnion(longer)
        }
        #expect(throws: DirtyBitmapError.geometryMismatch(pageSize: 4096, pageCount: 100, otherPageSize: 8192, otherPageCount: 100)) {
            try bitmap.union(coarser)
        }
        #expect(bitmap == before)
        do {
            _ = try bitmap.union(DirtyBitmap(pageCount: 3, pageSize: 1 << 21))
            Issue.record("union of different geometries succeeded")
        } catch {
            #expect(error.description == "dirty bitmaps differ in geometry: page size 4096 vs 2097152, page count 100 vs 3")
        }
    }

    @Test(arguments: DirtyPattern.allCases)
    func coarserPageIsDirtyWhenAnySmallPageIs(pattern: DirtyPattern) throws {
        try forEveryCount(of: pattern) { model, _ in
            let bitmap = try Reference.bitmap(model)
            for factor in [2, 4, 32, 64, 128, 512] {
                let coarse = try bitmap.converted(toPageSize: 4096 * UInt64(factor))
                let expected = stride(from: 0, to: model.count, by: factor).map { model[$0..<min(model.count, $0 + factor)].contains(true) }
                #expect(coarse.pageSize == 4096 * UInt64(factor))
                #expect(coarse.pageCount == expected.count)
                expectPages(coarse, expected, "factor \(factor), \(model.count) pages")
                #expect(coarse.byteCount >= bitmap.byteCount)
                expectTailClear(coarse)
            }
        }
    }

    @Test(arguments: DirtyPattern.allCases)
    func finerPagesAreDirtyWhenTheirBigPageIs(pattern: DirtyPattern) throws {
        try forEveryCount(of: pattern, counts: [1, 63, 64, 65, 129, 300]) { model, _ in
            let bitmap = try Reference.bitmap(model, pageSize: 1 << 21)
            for factor in [2, 8, 64, 512] {
                let fine = try bitmap.converted(toPageSize: (1 << 21) / UInt64(factor))
                let expected = (0..<(model.count * factor)).map { model[$0 / factor] }
                #expect(fine.pageCount == expected.count)
                #expect(fine.byteCount == bitmap.byteCount)
                expectPages(fine, expected, "factor \(factor), \(model.count) pages")
                // Coarsening undoes refining.
                #expect(try fine.converted(toPageSize: 1 << 21) == bitmap)
                expectTailClear(fine)
            }
            #expect(try bitmap.converted(toPageSize: 1 << 21) == bitmap)
        }
    }

    @Test func conversionToABadPageSizeThrows() throws {
        let bitmap = try DirtyBitmap(pageCount: 10, pageSize: 8192)
        #expect(throws: DirtyBitmapError.invalidPageSize(2048)) { try bitmap.converted(toPageSize: 2048) }
        #expect(throws: DirtyBitmapError.invalidPageSize(12288)) { try bitmap.converted(toPageSize: 12288) }
    }

    @Test(arguments: DirtyPattern.allCases)
    func slicesMatchTheModel(pattern: DirtyPattern) throws {
        try forEveryCount(of: pattern) { model, rng in
            let bitmap = try Reference.bitmap(model)
            for _ in 0..<40 {
                let range = Reference.range(within: model.count, using: &rng)
                let slice = try bitmap.slice(pages: range)
                #expect(slice.pageCount == range.count)
                #expect(slice.pageSize == bitmap.pageSize)
                expectPages(slice, Array(model[range]), "slice \(range) of \(model.count)")
                expectTailClear(slice)
            }
            #expect(try bitmap.slice(pages: 0..<model.count) == bitmap)
        }
    }

    @Test(arguments: DirtyPattern.allCases)
    func insertingASubBitmapIsOrAtAnOffset(pattern: DirtyPattern) throws {
        try forEveryCount(of: pattern) { model, rng in
            for _ in 0..<12 {
                var expected = model
                let length = Int.random(in: 0...model.count, using: &rng)
                let offset = Int.random(in: 0...(model.count - length), using: &rng)
                let inserted = DirtyPattern.allCases.randomElement(using: &rng)!.pages(count: length, using: &rng)
                for (i, dirty) in inserted.enumerated() where dirty { expected[offset + i] = true }
                var bitmap = try Reference.bitmap(model)
                try bitmap.insert(Reference.bitmap(inserted), atPage: offset)
                expectPages(bitmap, expected, "\(length) pages at \(offset) of \(model.count)")
                expectTailClear(bitmap)
            }
        }
    }

    /// The kernel-sized pieces a sender reads one by one, put back together.
    @Test(arguments: DirtyPattern.allCases)
    func slicesInsertedBackRebuildTheBitmap(pattern: DirtyPattern) throws {
        try forEveryCount(of: pattern) { model, rng in
            let bitmap = try Reference.bitmap(model)
            var rebuilt = try DirtyBitmap(pageCount: model.count, pageSize: 4096)
            var start = 0
            while start < model.count {
                let end = min(model.count, start + Int.random(in: 1...200, using: &rng))
                try rebuilt.insert(bitmap.slice(pages: start..<end), atPage: start)
                start = end
            }
            #expect(rebuilt == bitmap)
        }
    }

    @Test func sliceAndInsertMisuseThrows() throws {
        var bitmap = try DirtyBitmap(pageCount: 100, pageSize: 4096)
        for range in [-1..<10, 90..<101, 100..<101] {
            #expect(throws: DirtyBitmapError.rangeOutOfRange(range, pageCount: 100)) { try bitmap.slice(pages: range) }
        }
        let ten = try DirtyBitmap(pageCount: 10, pageSize: 4096)
        for offset in [-1, 91, 100, 101, Int.max] {
            #expect(throws: DirtyBitmapError.insertOutOfRange(atPage: offset, insertedPages: 10, pageCount: 100)) {
                try bitmap.insert(ten, atPage: offset)
            }
        }
        let coarse = try DirtyBitmap(pageCount: 10, pageSize: 8192)
        do {
            try bitmap.insert(coarse, atPage: 0)
            Issue.record("insert at another page size succeeded")
        } catch {
            #expect(error.description == "dirty bitmaps differ in geometry: page size 4096 vs 8192")
        }
        try bitmap.insert(ten, atPage: 90)
        try bitmap.insert(DirtyBitmap(pageCount: 0, pageSize: 4096), atPage: 100)
        #expect(bitmap.isEmpty)
    }

    @Test(arguments: DirtyPattern.allCases)
    func partitionsCoverTheBitmapAndShareTheDirtyPages(pattern: DirtyPattern) throws {
        try forEveryCount(of: pattern, counts: dirtyPageCounts + [100_003]) { model, _ in
            let bitmap = try Reference.bitmap(model)
            let words = Reference.words(model)
            let dirtyWords = words.filter { $0 != 0 }.count
            let total = model.filter { $0 }.count
            for n in [1, 2, 3, 4, 7, 16, 64, 1000] {
                let ranges = try bitmap.partitioned(into: n)
                let context = "n \(n), \(model.count) pages, \(dirtyWords) dirty words"
                #expect(ranges.count == max(1, min(n, dirtyWords)), "\(context)")
                #expect(ranges.first?.lowerBound == 0 && ranges.last?.upperBound == model.count, "\(context)")
                #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound }, "\(context)")
                #expect(ranges.dropFirst().allSatisfy { $0.lowerBound % 64 == 0 }, "\(context)")
                let counts = ranges.map { model[$0].filter { $0 }.count }
                if total > 0 { #expect(counts.allSatisfy { $0 > 0 }, "\(context): \(counts)") }
                // Each boundary lies within half a word (32 pages) of where the even split
                // would put it, unless there are too few dirty words to give every range one.
                if dirtyWords >= 4 * ranges.count {
                    var before = 0
                    for (k, count) in counts.enumerated().dropLast() {
                        before += count
                        let ideal = Double(total) * Double(k + 1) / Double(ranges.count)
                        #expect(abs(Double(before) - ideal) <= 33, "\(context): boundary \(k + 1) after \(before) pages, ideal \(ideal)")
                    }
                }
            }
            #expect(throws: DirtyBitmapError.invalidPartitionCount(0)) { try bitmap.partitioned(into: 0) }
            #expect(throws: DirtyBitmapError.invalidPartitionCount(-3)) { try bitmap.partitioned(into: -3) }
        }
    }
}
