// The embedding surface in one import: `import VFIOMigration` brings the engine (VFIOCore),
// the kernel backend and device naming (VFIOKernel), the stream format (VFIOStream) and the
// buffer type the data path hands around (VFIOBuffers).
@_exported import VFIOBuffers
@_exported import VFIOCore
@_exported import VFIOKernel
@_exported import VFIOStream
