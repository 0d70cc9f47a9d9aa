// TLS credentials for the bench's TLS runs: the operator's (--tls-dir), or a CA, a server
// certificate for 127.0.0.1 and a client certificate made for this run with the openssl tool
// (EC P-256, valid one day) in QEMU's layout, and removed afterwards.
import Foundation
import VFIOMigration

struct BenchCredentials {
    let server: String
    let client: String
    /// Made for this run (and removed by `remove`).
    let generated: Bool
    private let root: String?

    /// `dir` holds server/ and client/, or both sets of files itself; nil makes new ones under `scratch`.
    static func resolve(_ dir: String?, scratch: String) throws -> BenchCredentials {
        guard let dir else { return try make(under: scratch) }
        let manager = FileManager.default
        if manager.fileExists(atPath: dir + "/server/server-cert.pem") && manager.fileExists(atPath: dir + "/client/client-cert.pem") {
            return BenchCredentials(server: dir + "/server", client: dir + "/client", generated: false, root: nil)
        }
        guard manager.fileExists(atPath: dir + "/server-cert.pem") && manager.fileExists(atPath: dir + "/client-cert.pem") else {
            throw CLIFailure(.usage, "--tls-dir \(shown(dir)) has neither server/ and client/ nor server-cert.pem and client-cert.pem (QEMU's layout)")
        }
        return BenchCredentials(server: dir, client: dir, generated: false, root: nil)
    }

    func transport() throws -> BenchTransport {
        do {
            let server = try TLSContext(TLSConfiguration(role: .server, credentialsDirectory: server))
            let client = try TLSContext(TLSConfiguration(role: .client, credentialsDirectory: client, serverName: "127.0.0.1"))
            return .tls(server: server, client: client)
        } catch {
            throw CLIFailure(.usage, "TLS credentials for the bench: \(error)")
        }
    }

    func remove() {
        if let root { try? FileManager.default.removeItem(atPath: root) }
    }

    private static func make(under scratch: String) throws -> BenchCredentials {
        let root = scratch + "/vfio-bench-tls-\(ProcessInfo.processInfo.processIdentifier)"
        let manager = FileManager.default
        try? manager.removeItem(atPath: root)
        for sub in ["", "/server", "/client", "/work"] { try manager.createDirectory(atPath: root + sub, withIntermediateDirectories: true) }
        let work = root + "/work"
        do {
            try key(work + "/ca-key.pem")
            try openssl(["req", "-x509", "-new", "-key", work + "/ca-key.pem", "-subj", "/CN=vfio-migrate bench CA", "-days", "1", "-sha256",
                         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                         "-out", work + "/ca-cert.pem"])
            try leaf("server", subject: "/CN=localhost", san: "IP:127.0.0.1,DNS:localhost", usage: "serverAuth", work: work)
            try leaf("client", subject: "/CN=vfio-migrate-bench", san: "DNS:vfio-migrate-bench", usage: "clientAuth", work: work)
            for role in ["server", "client"] {
                try manager.copyItem(atPath: work + "/ca-cert.pem", toPath: "\(root)/\(role)/ca-cert.pem")
                try manager.copyItem(atPath: "\(work)/\(role)-cert.pem", toPath: "\(root)/\(role)/\(role)-cert.pem")
                try manager.copyItem(atPath: "\(work)/\(role)-key.pem", toPath: "\(root)/\(role)/\(role)-key.pem")
            }
        } catch {
            try? manager.removeItem(atPath: root)
            throw error
        }
        return BenchCredentials(server: root + "/server", client: root + "/client", generated: true, root: root)
    }

    private static func key(_ path: String) throws {
        try openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path])
    }

    private static func leaf(_ name: String, subject: String, san: String, usage: String, work: String) throws {
        try key("\(work)/\(name)-key.pem")
        try openssl(["req", "-new", "-key", "\(work)/\(name)-key.pem", "-subj", subject, "-out", "\(work)/\(name).csr"])
        let ext = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=\(usage)\nsubjectAltName=\(san)\n"
        try ext.write(toFile: "\(work)/\(name).ext", atomically: true, encoding: .utf8)
        try openssl(["x509", "-req", "-in", "\(work)/\(name).csr", "-CA", work + "/ca-cert.pem", "-CAkey", work + "/ca-key.pem",
                     "-CAcreateserial", "-days", "1", "-sha256", "-extfile", "\(work)/\(name).ext", "-out", "\(work)/\(name)-cert.pem"])
    }

    private static func openssl(_ arguments: [String]) throws {
        let candidates = ["/usr/bin/openssl", "/usr/local/bin/openssl", "/bin/openssl"]
        guard let tool = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw CLIFailure(.notSupported, "no openssl tool to make TLS credentials for the bench: give --tls-dir DIR, or --only without tls")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let said = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CLIFailure(.failed, "openssl \(arguments.first ?? "") failed (exit \(process.terminationStatus)): \(shown(String(decoding: said, as: UTF8.self), limit: 400))")
        }
    }
}
