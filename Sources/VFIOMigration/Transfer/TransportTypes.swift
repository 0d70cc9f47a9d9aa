// The transport's types an embedder needs to set up a migration, under the one import: names
// and addresses, TCP settings, TLS contexts. The syscall layer itself stays unexported.
import VFIOSyscalls

public typealias NetworkAddress = VFIOSyscalls.NetworkAddress
public typealias TCPOptions = VFIOSyscalls.TCPOptions
public typealias TLSContext = VFIOSyscalls.TLSContext
public typealias TLSConfiguration = VFIOSyscalls.TLSConfiguration
public typealias TLSRole = VFIOSyscalls.TLSRole
public typealias TLSCipherSuite = VFIOSyscalls.TLSCipherSuite
public typealias TLSError = VFIOSyscalls.TLSError
public typealias ByteStreamConnection = VFIOSyscalls.ByteStreamConnection
