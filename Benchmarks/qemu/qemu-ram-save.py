#!/usr/bin/env python3
"""QEMU's own RAM migration of a memory-backend-file, for vfio-bench-ratios to compare the
engine with: starts Debian's qemu-system-x86_64 with the guest stopped (-S, no kernel), hands
it an open /dev/null over QMP (getfd) and migrates into it ("fd:"), with the bandwidth cap
lifted, and prints one JSON line: QEMU's own total-time and RAM bytes, and the wall time from
the migrate command to "completed" as seen here.

usage: qemu-ram-save.py MEM_FILE SIZE_MIB [qemu binary]"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time


def qmp(sock, reader, command, **arguments):
    message = {"execute": command}
    if arguments:
        message["arguments"] = arguments
    sock.sendall((json.dumps(message) + "\n").encode())
    while True:
        reply = json.loads(reader.readline())
        if "return" in reply or "error" in reply:
            if "error" in reply:
                raise RuntimeError(f"{command}: {reply['error']}")
            return reply["return"]


def main():
    path, size = sys.argv[1], int(sys.argv[2])
    binary = sys.argv[3] if len(sys.argv) > 3 else "qemu-system-x86_64"
    directory = tempfile.mkdtemp(prefix="qemu-bench-")
    qmp_path = os.path.join(directory, "qmp.sock")
    qemu = subprocess.Popen([
        binary, "-machine", "q35,accel=tcg", "-nodefaults", "-display", "none", "-m", f"{size}M",
        "-object", f"memory-backend-file,id=m,size={size}M,mem-path={path},share=on",
        "-machine", "memory-backend=m", "-S", "-qmp", f"unix:{qmp_path},server=on,wait=off",
    ], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(500):
            if os.path.exists(qmp_path):
                break
            time.sleep(0.01)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(qmp_path)
        reader = sock.makefile("r")
        json.loads(reader.readline())  # greeting
        qmp(sock, reader, "qmp_capabilities")
        # No bandwidth cap (the default is 128 MiB/s), as the engine has none.
        qmp(sock, reader, "migrate-set-parameters", **{"max-bandwidth": 1 << 40})
        null = os.open("/dev/null", os.O_WRONLY)
        sock.sendmsg([(json.dumps({"execute": "getfd", "arguments": {"fdname": "out"}}) + "\n").encode()],
                     [(socket.SOL_SOCKET, socket.SCM_RIGHTS, null.to_bytes(4, sys.byteorder))])
        while "return" not in json.loads(reader.readline()):
            pass
        os.close(null)
        start = time.monotonic()
        qmp(sock, reader, "migrate", uri="fd:out")
        while True:
            info = qmp(sock, reader, "query-migrate")
            if info.get("status") in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.002)
        wall = time.monotonic() - start
        if info["status"] != "completed":
            raise RuntimeError(f"migration {info['status']}: {info}")
        ram = info.get("ram", {})
        print(json.dumps({"wall": wall, "total_time_ms": info.get("total-time"), "ram_transferred": ram.get("transferred"),
                          "ram_total": ram.get("total"), "normal_pages": ram.get("normal"), "duplicate_pages": ram.get("duplicate")}))
        qmp(sock, reader, "quit")
    finally:
        try:
            qemu.wait(timeout=10)
        except subprocess.TimeoutExpired:
            qemu.kill()
        if qemu.returncode not in (0, None, -9):
            sys.stderr.write(qemu.stderr.read().decode(errors="replace"))
        try:
            os.unlink(qmp_path)
            os.rmdir(directory)
        except OSError:
            pass


if __name__ == "__main__":
    main()
