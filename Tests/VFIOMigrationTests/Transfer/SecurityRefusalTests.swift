// Every refusal a migration meets from a peer it must not trust, through the library: each
// one names what failed, leaves the sources RUNNING (untouched when the refusal comes before
// the negotiation), and the target either keeps serving the real migration or resets its
// devices. Wrong CA both ways, a client outside the allow-list, plain TCP and TLS crossed,
// a replayed channel and a replayed conversation, a channel of another session, a source that
// never opens its channels, a connection that never authenticates, a second migration while
// one runs.
import Foundation
import Testing
import VFIOMigration
import VFIOMockDevices
import VFIOMock

@Suite(.serialized) struct SecurityRefusalTests {
    private let env = DeviceEnvironment.withMockDevices()
    private let quick = ReceiveOptions(handshakeTimeout: .seconds(3), idleTimeout: .seconds(5))

    private func tls(_ directory: String, _ role: TLSRole, allowed: [String] = []) throws -> TransportSecurity {
        .tls(try TLSContext(TLSConfiguration(
            role: role, credentialsDirectory: "\(TLSFixtures.directory)/\(directory)", allowedClients: allowed,
            serverName: role == .client ? "receiver.test" : nil)))
    }

    /// A send that must be refused before anything ran on the source.
    private func refusedSend(_ spec: String = "mock:refused?state=1MiB", to connector: any TransferConnecting) throws -> VFIOError {
        let source = try env.open(spec)
        source.mock!.clearArcHistory()
        do {
            try Migration.send([source], to: connector, options: .test(), save: .test)
        } catch {
            #expect(error.outcomes.map(\.isRunning) == [true], "\(error)")
            #expect(source.untouched, "the source moved: \(source.mock!.arcHistory)")
            #expect(try source.currentState() == .running)
            return error
        }
        throw TestFailure("the send was not refused")
    }

    /// A migration that must go through: the data arrives whole.
    private func goodSend(_ security: TransportSecurity, to address: NetworkAddress, target: VFIODevice) throws {
        let source = try env.open("mock:good?state=1MiB&seed=4")
        let sent = try Migration.send([source], to: TCPConnector(to: address, security: security), options: .test(), save: .test)
        #expect(sent.confirmation.committed == .running)
        #expect(source.mock!.stateDigest == target.mock!.stateDigest)
    }

    // MARK: certificates

    @Test func aReceiverWithACertificateFromAnotherCAIsRefusedByTheSource() throws {
        let targetDevice = try env.open("mock:b?state=1MiB")
        let target = try ListeningTarget([targetDevice], security: try tls("rogue-server", .server), options: quick)
        let error = try refusedSend(to: TCPConnector(to: target.address, security: try tls("client", .client)))
        #expect(error.code == .authenticationFailed, "\(error)")
        #expect(error.message.contains("certificate"), "the source names the certificate: \(error)")
        guard case .failure(let served) = target.finish() else { Issue.record("the rogue receiver got a migration"); return }
        #expect(served.code == .timedOut, "\(served)")
        #expect(targetDevice.untouched, "nothing reached the rogue receiver's device")
    }

    @Test func aSenderWithACertificateFromAnotherCAIsTurnedAwayAndTheListenerServesTheRealOne() throws {
        let targetDevice = try env.open("mock:b?state=1MiB")
        let target = try ListeningTarget([targetDevice], security: try tls("server", .server))
        let rogue = try refusedSend(to: TCPConnector(to: target.address, security: try tls("rogue-client", .client)))
        #expect(rogue.code == .authenticationFailed, "\(rogue)")
        try goodSend(try tls("client", .client), to: target.address, target: targetDevice)
        let received = try target.finish().get()
        #expect(received.rejectedConnections.count == 1, "\(received.rejectedConnections)")
        #expect(received.rejectedConnections.first?.contains("certificate") == true, "\(received.rejectedConnections)")
    }

    @Test func aSenderOutsideTheAllowListIsTurnedAwayAndAnAllowedOneIsServed() throws {
        let targetDevice = try env.open("mock:b?state=1MiB")
        let target = try ListeningTarget([targetDevice], security: try tls("server", .server, allowed: ["sender-b"]))
        let outsider = try refusedSend(to: TCPConnector(to: target.address, security: try tls("client", .client)))
        #expect(outsider.code == .authenticationFailed, "\(outsider)")
        #expect(outsider.hint?.contains("allow-client") == true, "\(outsider)")
        try goodSend(try tls("client-other", .client), to: target.address, target: targetDevice)
        let received = try target.finish().get()
        #expect(received.rejectedConnections.count == 1, "\(received.rejectedConnections)")
        let note = received.rejectedConnections.first ?? ""
        #expect(note.contains("CN=sender-a") && note.contains("allow-list [sender-b]"), "\(note)")
    }

    // MARK: plain and TLS crossed

    @Test func plainTCPAgainstATLSReceiverFailsAtOnceAndTheReceiverKeepsServing() throws {
        let targetDevice = try env.open("mock:b?state=1MiB")
        let target = try ListeningTarget([targetDevice], security: try tls("server", .server))
        let clock = ContinuousClock()
        let began = clock.now
        let plain = try refusedSend(to: TCPConnector(to: target.address, security: .insecure))
        #expect(clock.now - began < .seconds(3), "refused at once, not at a deadline: \(plain)")
        try goodSend(try tls("client", .client), to: target.address, target: targetDevice)
        let received = try target.finish().get()
        #expect(received.rejectedConnections.first?.contains("does not speak TLS") == true, "\(received.rejectedConnections)")
    }

    @Test func tlsAgainstAPlainReceiverFailsAtOnceAndTheReceiverKeepsServing() throws {
        let targetDevice = try env.open("mock:b?state=1MiB")
        let target = try ListeningTarget([targetDevice], security: .insecure)
        let clock = ContinuousClock()
        let began = clock.now
        let crossed = try refusedSend(to: TCPConnector(to: target.address, security: try tls("client", .client)))
        #expect(clock.now - began < .seconds(3), "refused at once, not at a deadline: \(crossed)")
        #expect(crossed.code == .authenticationFailed || crossed.errno == .connectionReset, "\(crossed)")
        try goodSend(.insecure, to: target.address, target: targetDevice)
        let received = try target.finish().get()
        #expect(received.rejectedConnections.first?.contains("bad magic") == true, "\(received.rejectedConnections)")
    }

    // MARK: replays and other sessions

    /// A complete migration whose bytes were recorded as they left the source.
    private func recordedMigration(channels: Int = 1) throws -> (recordings: [[UInt8]], id: MigrationID) {
        let targetDevice = try env.open("mock:old?state=1MiB&seed=4")
        let target = try LoopbackTarget([targetDevice])
        let recorder = RecordingConnector(TCPConnector(to: target.address, security: .insecure))
        let sent = try Migration.send([try env.open("mock:a?state=1MiB&seed=4")], to: recorder, options: .test(channels: channels), save: .test)
        _ = try target.finish().get()
        return (recorder.recordings, try #require(sent.header.migrationID))
    }

    @Test func aDataChannelOfAnEarlierMigrationIsTurnedAway() throws {
        let (recordings, old) = try recordedMigration()
        let targetDevice = try env.open("mock:b?state=1MiB")
        let target = try LoopbackTarget([targetDevice], options: quick)
        let source = try env.open("mock:a?state=1MiB&seed=4")
        let injector = InjectingConnector(TCPConnector(to: target.address, security: .insecure), stray: recordings[1])
        let sent = try Migration.send([source], to: injector, options: .test(), save: .test)
        injector.close()
        let received = try target.finish().get()
        #expect(sent.header.migrationID != old, "every migration gets a fresh id")
        #expect(received.rejectedConnections.count == 1, "\(received.rejectedConnections)")
        #expect(received.rejectedConnections.first?.contains("its migration id is \(old)") == true, "\(received.rejectedConnections)")
        #expect(source.mock!.stateDigest == targetDevice.mock!.stateDigest)
    }

    @Test func aWholeRecordedMigrationReplayedIsRefusedBecauseTheNonceDiffers() throws {
        let (recordings, old) = try recordedMigration()
        let targetDevice = try env.open("mock:b?state=1MiB")
        let before = targetDevice.mock!.stateDigest
        let target = try LoopbackTarget([targetDevice], options: quick)
        let replayed = try replay(recordings, to: target.address)
        guard case .failure(let error) = target.finish() else { Issue.record("a replayed migration was loaded"); return }
        for channel in replayed { channel.close() }
        #expect(error.code == .timedOut, "\(error)")
        #expect(error.message.contains("turned away") && error.message.contains("its migration id is \(old)"), "\(error)")
        #expect(error.outcomes.map(\.recovery) == [.reset], "\(error)")
        #expect(targetDevice.mock!.stateDigest == before, "nothing of the replay reached the device")
        #expect(try targetDevice.currentState() == .running)
    }

    @Test func aStrayChannelOfAnotherSessionIsTurnedAwayFromALiveMigration() throws {
        let targetDevice = try env.open("mock:b?state=4MiB")
        let target = try LoopbackTarget([targetDevice], options: quick)
        let source = try env.open("mock:a?state=4MiB&seed=4")
        // Channel 1 of 2, of a session this target never agreed to.
        let forged = StreamHeader(
            creationTimeNanoseconds: 0, maxPayload: 1 << 20, devices: [try source.descriptor()], migrationID: .random(),
            channel: StreamChannel(index: 1, count: 2))
        let injector = InjectingConnector(TCPConnector(to: target.address, security: .insecure), stray: try StreamEncoder(header: forged).encodeHeader())
        let sent = try Migration.send([source], to: injector, options: .test(channels: 2), save: .test)
        injector.close()
        let received = try target.finish().get()
        #expect(received.rejectedConnections.count == 1, "\(received.rejectedConnections)")
        #expect(received.rejectedConnections.first?.contains("this migration's is \(sent.header.migrationID!)") == true, "\(received.rejectedConnections)")
        #expect(received.metrics.channels.count == 2)
        #expect(source.mock!.stateDigest == targetDevice.mock!.stateDigest)
    }

    @Test func aSourceWhoseChannelCarriesAForeignSessionIDFailsAndBothSidesRollBack() throws {
        let targetDevice = try env.open("mock:b?state=2MiB")
        let before = targetDevice.mock!.stateDigest
        let target = try LoopbackTarget([targetDevice], options: quick)
        let source = try env.open("mock:a?state=2MiB&seed=4")
        let foreign = MigrationID.random()
        let path = ForeignIDConnector(TCPConnector(to: target.address, security: .insecure), channel: 1, foreign: foreign)
        let sent = Result { () throws(VFIOError) in try Migration.send([source], to: path, options: .test(channels: 2), save: .test) }
        guard case .failure(let sourceError) = sent else { Issue.record("the source reported success"); return }
        guard case .failure(let targetError) = target.finish() else { Issue.record("the target loaded a foreign channel"); return }
        #expect(sourceError.outcomes.map(\.isRunning) == [true], "\(sourceError)")
        #expect(try source.currentState() == .running)
        #expect(targetError.message.contains("its migration id is \(foreign)"), "\(targetError)")
        #expect(targetError.outcomes.map(\.recovery) == [.reset], "\(targetError)")
        #expect(targetDevice.mock!.stateDigest == before)
    }

    // MARK: stalled and silent peers

    @Test func aSourceThatNeverOpensItsChannelsIsTimedOutAndTold() throws {
        let targetDevice = try env.open("mock:b?state=1MiB")
        let target = try LoopbackTarget([targetDevice], options: ReceiveOptions(handshakeTimeout: .seconds(2), idleTimeout: .seconds(5)))
        let fake = try FakeSource(to: target.address, devices: [try env.open("mock:a?state=1MiB").descriptor()])
        guard case .failure(let error) = target.finish() else { Issue.record("the target finished"); return }
        #expect(error.code == .timedOut, "\(error)")
        #expect(error.message.contains("0 of 1 data channel(s) arrived"), "\(error)")
        #expect(error.outcomes.map(\.recovery) == [.reset], "\(error)")
        guard case .failed(let reason) = try fake.nextMessage() else { Issue.record("the source was not told"); return }
        #expect(reason.contains("data channel"), "\(reason)")
        fake.close()
    }

    @Test func theListenerDropsAConnectionThatNeverAuthenticatesAndServesTheMigration() throws {
        let targetDevice = try env.open("mock:b?state=1MiB")
        let target = try ListeningTarget([targetDevice], security: try tls("server", .server), authenticationTimeout: .seconds(1))
        // Connected first, says nothing: the listener meets it before the real source.
        let clock = ContinuousClock()
        let began = clock.now
        let silent = try TCPConnector(to: target.address, security: .insecure).connect()
        Thread.sleep(forTimeInterval: 0.1)
        try goodSend(try tls("client", .client), to: target.address, target: targetDevice)
        #expect(clock.now - began >= .seconds(1), "served after the silent one was dropped")
        let received = try target.finish().get()
        silent.close()
        #expect(received.rejectedConnections.count == 1, "\(received.rejectedConnections)")
        #expect(received.rejectedConnections.first?.contains("did not complete the handshake within 1 s") == true, "\(received.rejectedConnections)")
    }

    @Test func onPlainTCPAConnectionThatNeverProposesIsDroppedAndTheMigrationServed() throws {
        let targetDevice = try env.open("mock:b?state=1MiB")
        let options = ReceiveOptions(handshakeTimeout: .seconds(20), idleTimeout: .seconds(10), authenticationTimeout: .seconds(1))
        let target = try ListeningTarget([targetDevice], security: .insecure, options: options)
        let silent = try TCPConnector(to: target.address, security: .insecure).connect()
        Thread.sleep(forTimeInterval: 0.1)
        let clock = ContinuousClock()
        let began = clock.now
        try goodSend(.insecure, to: target.address, target: targetDevice)
        #expect(clock.now - began < .seconds(10), "served long before the 20 s handshake deadline")
        let received = try target.finish().get()
        silent.close()
        #expect(received.rejectedConnections.first?.contains("waiting for the source's proposal") == true, "\(received.rejectedConnections)")
    }

    @Test func theAuthenticationDeadlineIsAFewSecondsAndShorterThanASendersHandshake() throws {
        let acceptor = try TCPAcceptor(listeningOn: NetworkAddress(host: "127.0.0.1", port: 0), security: .insecure)
        defer { acceptor.close() }
        let sender = TLSConfiguration(role: .client, credentialsDirectory: "/unused")
        // A sender queued behind one connection that never authenticates still completes.
        #expect(acceptor.authenticationTimeout <= .seconds(5))
        #expect(acceptor.authenticationTimeout * 2 <= sender.handshakeTimeout)
        #expect(ReceiveOptions().authenticationTimeout == acceptor.authenticationTimeout)
    }

    // MARK: one migration at a time

    @Test func aSecondMigrationWhileOneRunsIsRefusedAndTheFirstCompletes() throws {
        let spec = "flags=stop-copy,pre-copy&state=2MiB&dirty-rate=1/1MiB"
        let targetDevice = try env.open("mock:b?\(spec)")
        let target = try LoopbackTarget([targetDevice], options: quick)
        let first = try env.open("mock:a?\(spec)&seed=4")
        let held = HeldPolicy()
        let connector = TCPConnector(to: target.address, security: .insecure)
        let running = Background { () throws(VFIOError) in
            try Migration.send([first], to: connector, options: .test(), save: .test, policy: held)
        }
        held.entered.wait()
        let second = try refusedSend(to: TCPConnector(to: target.address, security: .insecure))
        #expect(second.code == .busy && second.message.contains("another migration"), "\(second)")
        held.release()
        let sent = try running.join().get()
        let received = try target.finish().get()
        #expect(sent.confirmation.committed == .running)
        #expect(first.mock!.stateDigest == targetDevice.mock!.stateDigest)
        #expect(received.rejectedConnections.contains { $0.contains("another migration is in progress") }, "\(received.rejectedConnections)")
    }
}
