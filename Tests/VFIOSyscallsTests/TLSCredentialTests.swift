// Credentials in QEMU's layout: every missing, unreadable, malformed or mismatched file is
// named in the error, for the role that needs it.
import Foundation
import Testing
import VFIOSyscalls

@Suite struct TLSCredentialTests {
    /// A fresh directory holding copies of `files` from fixture directory `from`.
    func directory(copying files: [String], from source: String = "server") throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vfio-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for file in files {
            try FileManager.default.copyItem(atPath: Fixtures.credentials(source) + "/" + file, toPath: path + "/" + file)
        }
        return path
    }

    func loadError(_ role: TLSRole, _ directory: String) -> TLSError? {
        do {
            _ = try TLSContext(TLSConfiguration(role: role, credentialsDirectory: directory))
            return nil
        } catch {
            return error
        }
    }

    @Test func theLayoutIsQEMUs() {
        let server = TLSCredentials(directory: "/etc/pki/qemu", role: .server)
        #expect(server.caCertificate == "/etc/pki/qemu/ca-cert.pem")
        #expect(server.certificate == "/etc/pki/qemu/server-cert.pem")
        #expect(server.privateKey == "/etc/pki/qemu/server-key.pem")
        let client = TLSCredentials(directory: "/etc/pki/qemu/", role: .client)
        #expect(client.certificate == "/etc/pki/qemu/client-cert.pem")
        #expect(client.privateKey == "/etc/pki/qemu/client-key.pem")
    }

    @Test func aMissingDirectoryNamesEveryFile() throws {
        let error = try #require(loadError(.server, "/nonexistent/vfio-tls"))
        #expect(error.step == .loadCredentials(files: [
            "/nonexistent/vfio-tls/ca-cert.pem", "/nonexistent/vfio-tls/server-cert.pem", "/nonexistent/vfio-tls/server-key.pem",
        ]))
        #expect(error.reason.contains("/nonexistent/vfio-tls/server-key.pem missing"))
        #expect(error.reason.contains("the directory /nonexistent/vfio-tls does not exist"))
        #expect(error.object == "server credentials in /nonexistent/vfio-tls")
    }

    @Test func onlyTheMissingFilesOfTheRoleAreNamed() throws {
        let path = try directory(copying: ["ca-cert.pem", "server-cert.pem"])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let server = try #require(loadError(.server, path))
        #expect(server.step == .loadCredentials(files: [path + "/server-key.pem"]))
        #expect(server.description == "loading \(path)/server-key.pem on server credentials in \(path) failed: \(path)/server-key.pem missing")
        // The same directory lacks both client files.
        let client = try #require(loadError(.client, path))
        #expect(client.step == .loadCredentials(files: [path + "/client-cert.pem", path + "/client-key.pem"]))
    }

    @Test func aDirectoryInPlaceOfAFileIsNamed() throws {
        let path = try directory(copying: ["server-cert.pem", "server-key.pem"])
        defer { try? FileManager.default.removeItem(atPath: path) }
        try FileManager.default.createDirectory(atPath: path + "/ca-cert.pem", withIntermediateDirectories: false)
        let error = try #require(loadError(.server, path))
        #expect(error.step == .loadCredentials(files: [path + "/ca-cert.pem"]))
        #expect(error.reason.contains("not a regular file"))
    }

    @Test func aMalformedCertificateFileIsNamedWithOpenSSLsReason() throws {
        let path = try directory(copying: ["ca-cert.pem", "server-key.pem"])
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n".write(toFile: path + "/server-cert.pem", atomically: true, encoding: .utf8)
        let error = try #require(loadError(.server, path))
        #expect(error.step == .loadCredentials(files: [path + "/server-cert.pem"]))
        #expect(!error.reason.isEmpty)
    }

    @Test func aCAFileWithoutCertificatesIsNamed() throws {
        let path = try directory(copying: ["server-cert.pem", "server-key.pem"])
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "nothing here\n".write(toFile: path + "/ca-cert.pem", atomically: true, encoding: .utf8)
        let error = try #require(loadError(.server, path))
        #expect(error.step == .loadCredentials(files: [path + "/ca-cert.pem"]))
    }

    @Test func aKeyThatDoesNotMatchItsCertificateNamesBoth() throws {
        let path = Fixtures.credentials("mismatched")
        let error = try #require(loadError(.client, path))
        #expect(error.step == .loadCredentials(files: [path + "/client-cert.pem", path + "/client-key.pem"]))
        #expect(error.reason.contains("does not match"))
    }

    @Test func noCipherSuiteIsAConfigurationError() throws {
        #expect {
            try TLSContext(TLSConfiguration(role: .server, credentialsDirectory: Fixtures.credentials("server"), cipherSuites: []))
        } throws: { error in
            (error as? TLSError)?.step == .configure
        }
    }
}
