import Testing
@testable import VFIOCore
import VFIOStream

/// An oracle written independently of the table: breadth-first search over the direct arcs,
/// where a saving state (PRE_COPY, PRE_COPY_P2P, STOP_COPY) may start or end a path but never
/// sit inside one, unless both ends are saving states (the session then stays open throughout,
/// as in PRE_COPY -> PRE_COPY_P2P -> STOP_COPY).
private func shortestLegalPathLength(
    from start: MigrationState, to goal: MigrationState, arcs: Set<MigrationArc>
) -> Int? {
    if start == goal { return 0 }
    let withinSession = start.isSaving && goal.isSaving
    var distance: [MigrationState: Int] = [start: 0]
    var queue = [start]
    while !queue.isEmpty {
        let at = queue.removeFirst()
        if at != start && at.isSaving && !withinSession { continue } // no passing through a saving state
        for arc in arcs where arc.from == at && distance[arc.to] == nil {
            distance[arc.to] = distance[at]! + 1
            if arc.to == goal { return distance[arc.to] }
            queue.append(arc.to)
        }
    }
    return nil
}

private let flagSets = MigrationFlags.definedCombinations
private let requestable = MigrationState.allCases.filter { $0 != .error }

@Suite struct TransitionTableTests {
    @Test(arguments: flagSets)
    func everyPathIsShortestAndLegal(flags: MigrationFlags) {
        let arcs = TransitionTable.directArcs(for: flags)
        let states = requestable.filter { $0.isSupported(by: flags) }
        var checked = 0
        for from in states {
            for to in states {
                let forbidden = from == .stopCopy && (to == .preCopy || to == .preCopyP2P)
                do {
                    let steps = try TransitionTable.path(from: from, to: to, flags: flags)
                    #expect(!forbidden, "\(from)->\(to) must be refused")
                    var at = from
                    for (i, step) in steps.enumerated() {
                        #expect(arcs.contains(MigrationArc(at, step)), "\(from)->\(to): \(at)->\(step) is not a direct arc for \(flags)")
                        if i < steps.count - 1 && !(from.isSaving && to.isSaving) {
                            #expect(!step.isSaving, "\(from)->\(to) passes through saving state \(step)")
                        }
                        at = step
                    }
                    #expect(at == to)
                    #expect(steps.count == shortestLegalPathLength(from: from, to: to, arcs: arcs),
                            "\(from)->\(to) for \(flags): table path \(steps) is not shortest")
                } catch {
                    #expect(forbidden, "\(from)->\(to) for \(flags) refused: \(error)")
                    #expect(shortestLegalPathLength(from: from, to: to, arcs: arcs) == nil || forbidden)
                }
                checked += 1
            }
        }
        #expect(checked == states.count * states.count)
    }

    @Test(arguments: flagSets)
    func unsupportedStatesAreRefused(flags: MigrationFlags) {
        for from in requestable where from.isSupported(by: flags) {
            #expect(throws: TransitionRefusal.targetIsError) { try TransitionTable.check(from: from, to: .error, flags: flags) }
            for to in requestable where !to.isSupported(by: flags) {
                #expect(throws: TransitionRefusal.targetUnsupported(to, flags)) { try TransitionTable.check(from: from, to: to, flags: flags) }
            }
            #expect(throws: TransitionRefusal.currentUnsupported(.error, flags)) { try TransitionTable.check(from: .error, to: from, flags: flags) }
        }
    }

    @Test func pathsMatchTheUAPIExamples() throws {
        let all: MigrationFlags = [.stopCopy, .p2p, .preCopy]
        #expect(try TransitionTable.path(from: .preCopy, to: .resuming, flags: all) == [.running, .runningP2P, .stop, .resuming])
        #expect(try TransitionTable.path(from: .preCopy, to: .stopCopy, flags: all) == [.preCopyP2P, .stopCopy])
        #expect(try TransitionTable.path(from: .stop, to: .preCopy, flags: all) == [.runningP2P, .running, .preCopy])
        let basic: MigrationFlags = [.stopCopy]
        #expect(try TransitionTable.path(from: .running, to: .stopCopy, flags: basic) == [.stop, .stopCopy])
        let preCopyOnly: MigrationFlags = [.stopCopy, .preCopy]
        #expect(try TransitionTable.path(from: .preCopy, to: .stop, flags: preCopyOnly) == [.running, .stop])
        #expect(try TransitionTable.path(from: .preCopy, to: .stopCopy, flags: preCopyOnly) == [.stopCopy])
        let p2p: MigrationFlags = [.stopCopy, .p2p]
        #expect(try TransitionTable.path(from: .stopCopy, to: .running, flags: p2p) == [.stop, .runningP2P, .running])
    }

    @Test func sessionArcs() {
        #expect(TransitionTable.opensSession(MigrationArc(.stop, .stopCopy)))
        #expect(TransitionTable.opensSession(MigrationArc(.running, .preCopy)))
        #expect(TransitionTable.opensSession(MigrationArc(.runningP2P, .preCopyP2P)))
        #expect(TransitionTable.opensSession(MigrationArc(.stop, .resuming)))
        #expect(!TransitionTable.opensSession(MigrationArc(.preCopy, .preCopyP2P)))
        #expect(!TransitionTable.opensSession(MigrationArc(.preCopyP2P, .stopCopy)))
        #expect(TransitionTable.endsSession(MigrationArc(.stopCopy, .stop)))
        #expect(TransitionTable.endsSession(MigrationArc(.preCopy, .running)))
        #expect(TransitionTable.endsSession(MigrationArc(.resuming, .stop)))
        #expect(!TransitionTable.endsSession(MigrationArc(.preCopy, .stopCopy)))
        #expect(!TransitionTable.endsSession(MigrationArc(.running, .stop)))
    }

    @Test func flagDescriptions() {
        #expect(MigrationFlags([.stopCopy, .p2p]).description == "STOP_COPY|P2P")
        #expect(MigrationFlags(rawValue: 0x11).description == "STOP_COPY|0x10")
        #expect(MigrationState(name: "pre-copy_p2p") == .preCopyP2P)
        #expect(MigrationState(rawValue: 8) == nil)
    }
}
