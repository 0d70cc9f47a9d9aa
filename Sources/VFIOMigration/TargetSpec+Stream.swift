// Target specs from a stream: only the header is read, so a stream of any size answers at once.
import VFIOCore
import VFIOKernel
import VFIOStream

extension Migration {
    /// The spec of a target for device `index` of the stream from `source`. A stream of one
    /// device needs no index; one of several does.
    public static func targetSpec(
        forStreamFrom source: any ByteSource, device index: Int? = nil, uuid: String? = nil, parent: String? = nil,
        host: SysfsDiscovery? = SysfsDiscovery()
    ) throws(VFIOError) -> TargetSpec {
        let devices = try StreamInput(from: source, limits: .readOnly).header.devices
        let chosen: Int
        switch (index, devices.count) {
        case (nil, 1): chosen = 0
        case (nil, let count):
            throw VFIOError(.invalidArgument, "the stream carries \(count) devices; say which one (its index, 0...\(max(0, count - 1)))", device: source.name)
        case (let i?, let count):
            guard i >= 0 && i < count else {
                throw VFIOError(.invalidArgument, "device index \(i) outside the stream's \(count) device(s)", device: source.name)
            }
            chosen = i
        }
        return try TargetSpec.make(for: devices[chosen], uuid: uuid, parent: parent, host: host)
    }
}
