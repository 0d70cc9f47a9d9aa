// The mock driver's state walk against the fact sheet's effective-path tables (§3.4), for all
// four flag sets, through real MIG_DEVICE_STATE ioctls: every (from, to) pair, the arcs taken,
// and which requests hand back a new data fd.
import SystemPackage
import Testing
import VFIOMock

@Suite struct MockMigrationPathTests {
    struct FlagSet: Sendable, CustomStringConvertible {
        var spec: String
        var states: [MockDeviceState]
        /// from → to → "A>B>C" (states stepped through) or "blocked".
        var paths: [String: [String: String]]
        var description: String { spec }
    }

    static let abbreviations: [String: MockDeviceState] = [
        "STOP": .stop, "RUN": .running, "SC": .stopCopy, "RES": .resuming,
        "RP2P": .runningP2P, "PC": .preCopy, "PCP2P": .preCopyP2P,
    ]

    static let flagSets: [FlagSet] = [
        FlagSet(spec: "stop-copy", states: [.stop, .running, .stopCopy, .resuming], paths: [
            "STOP": ["RUN": "RUN", "SC": "SC", "RES": "RES"],
            "RUN": ["STOP": "STOP", "SC": "STOP>SC", "RES": "STOP>RES"],
            "SC": ["STOP": "STOP", "RUN": "STOP>RUN", "RES": "STOP>RES"],
            "RES": ["STOP": "STOP", "RUN": "STOP>RUN", "SC": "STOP>SC"],
        ]),
        FlagSet(spec: "stop-copy,p2p", states: [.stop, .running, .stopCopy, .resuming, .runningP2P], paths: [
            "STOP": ["RUN": "RP2P>RUN", "SC": "SC", "RES": "RES", "RP2P": "RP2P"],
            "RUN": ["STOP": "RP2P>STOP", "SC": "RP2P>STOP>SC", "RES": "RP2P>STOP>RES", "RP2P": "RP2P"],
            "SC": ["STOP": "STOP", "RUN": "STOP>RP2P>RUN", "RES": "STOP>RES", "RP2P": "STOP>RP2P"],
            "RES": ["STOP": "STOP", "RUN": "STOP>RP2P>RUN", "SC": "STOP>SC", "RP2P": "STOP>RP2P"],
            "RP2P": ["STOP": "STOP", "RUN": "RUN", "SC": "STOP>SC", "RES": "STOP>RES"],
        ]),
        FlagSet(spec: "stop-copy,pre-copy", states: [.stop, .running, .stopCopy, .resuming, .preCopy], paths: [
            "STOP": ["RUN": "RUN", "SC": "SC", "RES": "RES", "PC": "RUN>PC"],
            "RUN": ["STOP": "STOP", "SC": "STOP>SC", "RES": "STOP>RES", "PC": "PC"],
            "SC": ["STOP": "STOP", "RUN": "STOP>RUN", "RES": "STOP>RES", "PC": "blocked"],
            "RES": ["STOP": "STOP", "RUN": "STOP>RUN", "SC": "STOP>SC", "PC": "STOP>RUN>PC"],
            "PC": ["STOP": "RUN>STOP", "RUN": "RUN", "SC": "SC", "RES": "RUN>STOP>RES"],
        ]),
        FlagSet(spec: "stop-copy,p2p,pre-copy", states: [.stop, .running, .stopCopy, .resuming, .runningP2P, .preCopy, .preCopyP2P], paths: [
            "STOP": ["RUN": "RP2P>RUN", "SC": "SC", "RES": "RES", "RP2P": "RP2P", "PC": "RP2P>RUN>PC", "PCP2P": "RP2P>PCP2P"],
            "RUN": ["STOP": "RP2P>STOP", "SC": "RP2P>STOP>SC", "RES": "RP2P>STOP>RES", "RP2P": "RP2P", "PC": "PC", "PCP2P": "RP2P>PCP2P"],
            "SC": ["STOP": "STOP", "RUN": "STOP>RP2P>RUN", "RES": "STOP>RES", "RP2P": "STOP>RP2P", "PC": "blocked", "PCP2P": "blocked"],
            "RES": ["STOP": "STOP", "RUN": "STOP>RP2P>RUN", "SC": "STOP>SC", "RP2P": "STOP>RP2P", "PC": "STOP>RP2P>RUN>PC", "PCP2P": "STOP>RP2P>PCP2P"],
            "RP2P": ["STOP": "STOP", "RUN": "RUN", "SC": "STOP>SC", "RES": "STOP>RES", "PC": "RUN>PC", "PCP2P": "PCP2P"],
            "PC": ["STOP": "RUN>RP2P>STOP", "RUN": "RUN", "SC": "PCP2P>SC", "RES": "RUN>RP2P>STOP>RES", "RP2P": "RUN>RP2P", "PCP2P": "PCP2P"],
            "PCP2P": ["STOP": "RP2P>STOP", "RUN": "RP2P>RUN", "SC": "SC", "RES": "RP2P>STOP>RES", "RP2P": "RP2P", "PC": "PC"],
        ]),
    ]

    static func name(_ s: MockDeviceState) -> String {
        abbreviations.first { $0.value == s }!.key
    }

    @Test(arguments: flagSets)
    func everyRequestWalksTheTablePath(flagSet: FlagSet) throws {
        let opened = try Opened("mock:fsm?state=200&block-size=64&flags=\(flagSet.spec)")
        defer { try? opened.close() }
        let stream = try opened.saveStopCopy() // a valid stream for rows that start in RESUMING
        let saving: Set<MockDeviceState> = [.preCopy, .preCopyP2P, .stopCopy]
        for from in flagSet.states {
            for to in flagSet.states where to != from {
                // Reach `from` from RUNNING, making a RESUMING device's load succeed later.
                #expect(try opened.kernel.ioctl(opened.fd, R.reset, .none) == 0)
                var fds: [CInt] = []
                if from != .running {
                    let fd = try opened.set(from)
                    if fd >= 0 { fds.append(fd) }
                    if from == .resuming { try opened.kernel.writeAll(fd, stream) }
                }
                opened.device.clearArcHistory()
                let expected = flagSet.paths[Self.name(from)]![Self.name(to)]!
                let label = "\(flagSet.spec): \(from) → \(to)"
                if expected == "blocked" {
                    expectErrno(.invalidArgument) { try opened.set(to) }
                    #expect(opened.device.arcHistory.isEmpty, "\(label)")
                    #expect(try opened.state() == from, "\(label)")
                } else {
                    let fd = try opened.set(to)
                    let walked = opened.device.arcHistory.map { Self.name($0.to) }.joined(separator: ">")
                    #expect(walked == expected, "\(label)")
                    #expect(opened.device.arcHistory.allSatisfy { $0.errno == nil }, "\(label)")
                    #expect(opened.device.arcHistory.first?.from == from, "\(label)")
                    #expect(try opened.state() == to, "\(label)")
                    let opensSession = to == .resuming || (saving.contains(to) && !saving.contains(from))
                    #expect((fd >= 0) == opensSession, "\(label): data fd \(fd)")
                    if fd >= 0 { fds.append(fd) }
                }
                for fd in fds { try opened.kernel.close(fd) }
            }
        }
        // States the flags lack, ERROR and out-of-range values are refused without moving.
        #expect(try opened.kernel.ioctl(opened.fd, R.reset, .none) == 0)
        let absent = MockDeviceState.allCases.filter { !flagSet.states.contains($0) }.map(\.rawValue) + [8, 200]
        for raw in absent {
            expectErrno(.invalidArgument) {
                _ = try opened.feature(R.set | 2, payload: 8) { $0.set(8, u32: raw) }
            }
            #expect(try opened.state() == .running)
        }
        #expect(opened.kernel.liveThreadCount == 0)
    }

    @Test func settingTheCurrentStateIsANoOp() throws {
        let opened = try Opened("mock:same?state=64")
        defer { try? opened.close() }
        #expect(try opened.set(.running) == -1)
        #expect(opened.device.arcHistory.isEmpty)
    }

    @Test func errorIsLeftOnlyByReset() throws {
        let opened = try Opened("mock:err?state=64")
        defer { try? opened.close() }
        opened.device.faults.arcFailures = [.init(from: .running, to: .runningP2P, errno: .ioError, landInError: true)]
        expectErrno(.ioError) { try opened.set(.stop) }
        #expect(try opened.state() == .error)
        for target in [MockDeviceState.stop, .running, .resuming] {
            expectErrno(.invalidArgument) { try opened.set(target) }
        }
        #expect(try opened.kernel.ioctl(opened.fd, R.reset, .none) == 0)
        #expect(try opened.state() == .running)
    }
}
