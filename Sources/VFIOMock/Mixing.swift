// Cheap, well-spread 64-bit mixing (the splitmix64 finalizer) and a string hash. Used to
// generate device state lazily, so a state of many GiB costs no memory.

@inline(__always)
func mix64(_ x: UInt64) -> UInt64 {
    var z = x
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// Golden-ratio increment of splitmix64.
let mixGamma: UInt64 = 0x9E37_79B9_7F4A_7C15

/// Mixes several words into one, order-sensitive.
func mixAll(_ words: UInt64...) -> UInt64 {
    var h: UInt64 = 0x6A09_E667_F3BC_C908
    for w in words { h = mix64(h ^ w &+ mixGamma) }
    return h
}

/// 64-bit FNV-1a of a string's UTF-8 bytes (identity strings: compat ids, names).
func fnv1a(_ text: String) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in text.utf8 {
        h ^= UInt64(b)
        h = h &* 0x0000_0100_0000_01B3
    }
    return h
}
