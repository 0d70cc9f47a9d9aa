#!/usr/bin/env python3
"""The public API rule the compiler cannot state: no public declaration of the project's
modules hands out or takes a raw file descriptor or a raw address, and none exposes the
syscall seam (KernelInterface, UserMemory, ...). Reads the symbol graphs SwiftPM dumps
(`swift package dump-symbol-graph --minimum-access-level public`); prints each violation
as module, declaration and the reason, and exits 1 when there is any."""
import glob
import json
import os
import re
import sys

MODULES = ["VFIOBuffers", "VFIOStream", "VFIOSyscalls", "VFIOCore", "VFIOKernel", "VFIOMigration",
           "VFIOMock", "VFIOMockDevices"]
# Types that are the syscall seam itself: only the project's own modules may see them.
SEAM = {"KernelInterface", "UserMemory", "UserRegion", "IoctlArgument", "OpenFlags", "LinuxKernel"}
# A raw address: an untyped or typed pointer without bounds, or a bare integer named like one.
RAW_POINTER = {"UnsafeRawPointer", "UnsafeMutableRawPointer", "UnsafePointer", "UnsafeMutablePointer",
               "OpaquePointer", "AutoreleasingUnsafeMutablePointer"}
# Bounded views are allowed only where unsafe code is allowed and only as `withUnsafe...`
# style lending: the buffer type and the byte codec.
BOUNDED_VIEW = {"UnsafeRawBufferPointer", "UnsafeMutableRawBufferPointer", "UnsafeBufferPointer",
                "UnsafeMutableBufferPointer"}
VIEW_MODULES = {"VFIOBuffers", "VFIOStream"}
ADDRESS_NAMES = re.compile(r"^(address|vaddr|pointer|base)$", re.I)
FD_NAMES = re.compile(r"^(fd|rawFD|descriptor|fileDescriptor)$")


def fragments(symbol):
    return symbol.get("declarationFragments") or symbol["names"].get("subHeading") or []


def check(path):
    module = os.path.basename(path).split(".")[0].split("@")[0]
    data = json.load(open(path))
    problems = []
    for symbol in data["symbols"]:
        if symbol.get("accessLevel") not in ("public", "open"):
            continue
        # Default implementations a protocol's own module supplies (Sequence's
        # withContiguousStorageIfAvailable on every public Sequence) are not this module's API.
        if "::SYNTHESIZED::" in symbol["identifier"]["precise"]:
            continue
        frags = fragments(symbol)
        text = "".join(f["spelling"] for f in frags)
        types = [f["spelling"] for f in frags if f["kind"] == "typeIdentifier"]
        path = symbol["pathComponents"]
        where = f"{module}: {'.'.join(path)}: {text.strip()}"
        # An fd owner's number is the descriptor itself.
        if len(path) == 2 and path[0].endswith("FD") and path[1] == "rawValue":
            problems.append(f"{where}\n    exposes an owned descriptor's number")
        for t in types:
            if t in SEAM:
                problems.append(f"{where}\n    exposes the syscall seam type {t} (make it package)")
            if t in RAW_POINTER:
                problems.append(f"{where}\n    takes or returns a raw address ({t})")
            if t in BOUNDED_VIEW and module not in VIEW_MODULES:
                problems.append(f"{where}\n    lends raw memory ({t}) outside the buffer type and the codec")
        # Parameters and properties: `name: Type` pairs in the fragments.
        for i, f in enumerate(frags):
            if f["kind"] not in ("externalParam", "internalParam", "identifier"):
                continue
            following = [g for g in frags[i + 1:i + 4] if g["kind"] == "typeIdentifier"]
            if not following:
                continue
            t = following[0]["spelling"]
            if t in ("CInt", "Int32") and FD_NAMES.match(f["spelling"]):
                problems.append(f"{where}\n    takes or returns a raw file descriptor ({f['spelling']}: {t})")
            if t in ("UInt", "UInt64") and ADDRESS_NAMES.match(f["spelling"]):
                problems.append(f"{where}\n    takes or returns a raw address ({f['spelling']}: {t})")
    return problems


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else ".build"
    graphs = [p for p in glob.glob(f"{root}/*/symbolgraph/*.symbols.json")
              if os.path.basename(p).split(".")[0].split("@")[0] in MODULES]
    found = {os.path.basename(p).split(".")[0].split("@")[0] for p in graphs}
    missing = [m for m in MODULES if m not in found]
    if missing:
        print(f"check-public-api: no symbol graph under {root}/*/symbolgraph for "
              + ", ".join(missing), file=sys.stderr)
        return 2
    problems = [p for g in sorted(graphs) for p in check(g)]
    for p in problems:
        print("public API violation: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
