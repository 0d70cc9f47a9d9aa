// Command-line options of vfio-bench-ratios.
import Foundation

struct Options {
    /// Repetitions of each codec measurement.
    var repetitions = 15
    /// Repetitions of each whole-save comparison.
    var saveRepetitions = 9
    /// Repetitions of the memory comparison (each size once per repetition).
    var memoryRepetitions = 3
    /// State size of the devices in the save comparisons, as a mock spec writes it.
    var saveState = "256MiB"
    /// Bytes per transport run and repetitions of the transport comparison.
    var transportBytes = 512 << 20
    var transportRepetitions = 5
    /// Guest memory of the page streaming and QEMU comparisons, in MiB.
    var pagesMiB = 512
    var qemuMiB = 2048
    var qemuRepetitions = 5
    var sections: Set<Section> = Set(Section.allCases)

    enum Section: String, CaseIterable {
        case codec, save, memory, crc, bitmap, transport, pages, qemu
    }

    static let usage = """
        usage: vfio-bench-ratios [--quick] [--reps N] [--only codec|save|memory|crc|bitmap|transport|pages|qemu]...
          --quick   3 repetitions, a 64 MiB save device, 64 MiB transport runs: a smoke run, not for quoting
          --reps N  N codec repetitions (default 15); saves then repeat max(5, N/2 + 1) times (9 without it),
                    transport runs max(3, N/3) times (5 without it)
          --only S  run only section S (repeatable); bitmap needs 4 GiB of memory for its page copies
        """

    static func parse(_ arguments: [String]) -> Options {
        var options = Options()
        var only: Set<Section> = []
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            switch argument {
            case "--quick":
                options.repetitions = 3
                options.saveRepetitions = 3
                options.memoryRepetitions = 1
                options.saveState = "64MiB"
                options.transportBytes = 64 << 20
                options.transportRepetitions = 2
                options.pagesMiB = 128
                options.qemuMiB = 512
                options.qemuRepetitions = 2
            case "--reps":
                guard let value = rest.popFirst().flatMap(Int.init), value > 0 else { fail("--reps needs a positive number") }
                options.repetitions = value
                options.saveRepetitions = max(5, value / 2 + 1)
                options.transportRepetitions = max(3, value / 3)
                options.qemuRepetitions = max(3, value / 3)
            case "--only":
                guard let section = rest.popFirst().flatMap(Section.init(rawValue:)) else { fail(usage) }
                only.insert(section)
            case "-h", "--help":
                print(usage)
                exit(0)
            default:
                fail(usage)
            }
        }
        if !only.isEmpty { options.sections = only }
        return options
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(2)
}
