// Guest memory in the steppable save: bounded sends of dirty pages between the device
// iterations, and syncs that collect what the tracker and the VMM saw written meanwhile.
// Setup starts tracking with every page dirty; stop() takes the last sync once the devices
// stopped; complete() sends what is left as phase-2 pages before the devices' final data.

extension SaveSession {
    /// The guest memory this save sends, nil for a save of devices only.
    public var memory: GuestMemory? { memoryState?.memory }

    /// Page bytes still to send (as of the last sync and the sends since).
    public var memoryPendingBytes: UInt64 { memoryState?.pendingBytes ?? 0 }

    /// Sends dirty pages (lowest first) until about `byteBudget` bytes went or none is left.
    @discardableResult
    public func iterateMemory(byteBudget: Int = .max, into sink: any SaveSink) throws(VFIOError) -> MemoryIterationResult {
        try expectMemoryStep("iterateMemory")
        guard byteBudget > 0 else { throw VFIOError(.invalidArgument, "byte budget must be positive") }
        var result = MemoryIterationResult(bytes: 0, pages: 0, drained: true)
        try memoryStep { () throws(VFIOError) in
            result = try memoryState!.send(budget: UInt64(byteBudget), phase: .preCopy, into: sink)
        }
        return result
    }

    /// Collects the tracker's and the VMM's dirty logs: the pages written since the last sync
    /// are sent again. Starts a new memory round.
    @discardableResult
    public func syncMemory() throws(VFIOError) -> MemorySyncResult {
        try expectMemoryStep("syncMemory")
        var result = MemorySyncResult(newlyDirtyBytes: 0, pendingBytes: 0, dirtyRate: nil)
        try memoryStep { () throws(VFIOError) in result = try memoryState!.sync() }
        return result
    }

    private func expectMemoryStep(_ step: String) throws(VFIOError) {
        guard memoryState != nil else { throw .invalidUse("\(step) on a save without guest memory") }
        guard phase == .setUp || phase == .quiesced else {
            throw .invalidUse("\(step) called in phase \(phase.rawValue) of the save (allowed in setUp, quiesced)")
        }
    }

    private func memoryStep(_ body: () throws(VFIOError) -> Void) throws(VFIOError) {
        do {
            try body()
            report.memory = memoryState?.report
        } catch {
            throw failStep(error)
        }
    }
}
