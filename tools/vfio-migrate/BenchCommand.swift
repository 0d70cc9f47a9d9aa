import ArgumentParser
import Foundation
import VFIOMigration
import VFIOMockDevices

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the engine against raw baselines on the emulator, or real devices with --device.",
        discussion: """
            Without --device: in one run, on the same bytes and the same kinds of fds, the
            engine's save (to /dev/null, a file, a pipe), load, and send/receive over loopback
            TCP with 1, 2 and 4 channels (plain and TLS 1.3), each next to its raw baseline (a
            plain read/write loop with the same buffer size from the same source into the same
            sink), framing + CRC32C next to a page-cache read and a memcpy, and the peak memory
            of four 4 GiB devices sent over four channels between two processes. The devices are
            the emulator's fast source (`source=fast`), so the emulator is not what is measured.
            Every variant runs once per repetition in a rotating order; each ratio is the median
            of the per-repetition ratios. Exit 1 when a ratio misses its target (--no-fail: 0).

            With --device: migrates real devices on this host --runs times (save to memory or
            /dev/null, load back into the same devices or --target ones) and prints per phase
            the 25th, 50th and 90th percentiles, with the host captured in the JSON. Every device
            is left RUNNING; a device another process holds is refused.

            Examples:
              vfio-migrate bench
              vfio-migrate bench --quick --no-fail --json
              vfio-migrate bench --only loopback --only tls --tls-dir /etc/pki/vfio-migration
              vfio-migrate bench --only save --expect 'save.file>=0.9'
              vfio-migrate bench --device 0000:3b:00.2 --target 0000:3b:00.3 --runs 70 --json
              vfio-migrate bench --report /tmp/bench-report
            """)

    @Option(name: .customLong("device"), help: "A real device to migrate (repeatable); without it the emulator is measured.")
    var deviceNames: [String] = []
    @Option(name: .customLong("target"), help: "Where to load each --device's state (a sibling VF); default the device itself.")
    var targetNames: [String] = []
    @Option(help: "Migrations of the --device set (percentiles over them).") var runs = 10
    @Option(help: "Where --device saves go: memory (then loaded back) or null (/dev/null, no load).") var sink = "memory"
    @Flag(help: "No pre-copy for --device runs, even when the devices offer it.") var noPreCopy = false

    @Option(help: "State of the saved and loaded emulated device (e.g. 1GiB).") var state = "1GiB"
    @Option(help: "Bytes per loopback send/receive run, shared by its channels' devices.") var loopbackBytes = "1GiB"
    @Option(help: "Bytes per TLS run.") var tlsBytes = "256MiB"
    @Option(help: "Repetitions of every variant.") var repetitions = 5
    @Option(help: "Bytes per chunk (the engine's read size and the raw loops' buffer).") var chunkSize = "1MiB"
    @Option(help: "Only this section (repeatable): codec, pages, save, load, loopback, tls, memory.") var only: [String] = []
    @Flag(help: "Small sizes and 3 repetitions: a smoke run, not numbers to publish.") var quick = false
    @Option(help: "Devices of the two-process memory check.") var memoryDevices = 4
    @Option(help: "State of each device in the memory check.") var memoryState = "4GiB"
    @Option(help: "TLS credentials: a directory with server/ and client/ in QEMU's layout, or both sets in one; default: made for this run with openssl.")
    var tlsDir: String?
    @Option(help: "Directory for the file sink and the page-cache file (default /dev/shm, else the temporary directory).")
    var scratch: String?
    @Flag(help: "Exit 0 even when a ratio misses its target.") var noFail = false
    @Option(help: "Hold a ratio to your own bound instead of its target (repeatable): ID>=VALUE or ID<=VALUE, e.g. 'loopback.4>=0.95'; each ratio's id ends its line of the output.")
    var expect: [String] = []
    @Option(help: "Write an HTML report with plots into this directory.") var report: String?
    @OptionGroup var environment: EnvironmentOptions
    @OptionGroup var common: CommonOptions

    func run() throws {
        try execute(common) { invocation in
            if !deviceNames.isEmpty {
                try runDevices(invocation)
            } else {
                try runEmulator(invocation)
            }
        }
    }
}
