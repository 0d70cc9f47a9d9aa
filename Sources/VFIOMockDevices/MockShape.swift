// Replay targets for test authors: a fault-free mock device shaped like each device a stream
// was saved from (MockDeviceConfiguration(name:shapedLike:) reads the descriptor: state size,
// flags, identity, and compat id, block size and content source from its vendor string).
import VFIOCore
import VFIOMigration
import VFIOMock
import VFIOStream

/// Helpers for test authors working with `mock:` devices.
public enum MockDevices {
    /// One fault-free mock device spec per device of the stream from `source`, each able to
    /// load that device's state. Throws `.invalidArgument` for a device no mock can match (a
    /// capture of real hardware: name a target yourself), saying why.
    public static func replayTargetSpecs(for source: any ByteSource, names: (Int) -> String = { "replay\($0)" }) throws(VFIOError) -> [String] {
        let header = try StreamInput(from: source).header
        var specs: [String] = []
        for (i, descriptor) in header.devices.enumerated() {
            do {
                specs.append(try MockDeviceConfiguration(name: names(i), shapedLike: descriptor).spec)
            } catch {
                throw VFIOError(.invalidArgument, "device \(i) of the stream: \(error)", device: source.name, hint: "name a target device")
            }
        }
        return specs
    }

    public static func replayTargetSpecs(forStreamAt path: String, names: (Int) -> String = { "replay\($0)" }) throws(VFIOError) -> [String] {
        try replayTargetSpecs(for: try FileChannel.reading(path), names: names)
    }
}
