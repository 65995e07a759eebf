#!/usr/bin/env python3
"""Floods a running cps with hostile connections and reports its memory, open files and
readiness while it lasts: the issue-sized versions of the bounded floods in tests/connections.rs.

    scripts/flood.py PID HOST:PORT headers  [--connections 4000] [--kib 390]
    scripts/flood.py PID HOST:PORT idle     [--connections 20000]
    scripts/flood.py PID HOST:PORT keepalive [--connections 10000]

`headers`: each connection sends a request line and `--kib` KiB of one header, never the end.
`idle`: each connection sends nothing. `keepalive`: each makes one request and then stays idle.
Every second: open connections (as the client sees them), the server's RSS and open files, and
how long /health/ready took. Python standard library only; raise `ulimit -n` first.
"""

import argparse
import asyncio
import time


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return -1


def open_files(pid):
    import os

    return len(os.listdir(f"/proc/{pid}/fd"))


async def ready_ms(host, port):
    started = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
        writer.write(b"GET /health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 2)
        writer.close()
        ok = line.startswith(b"HTTP/1.1 200")
        return (time.monotonic() - started) * 1000, ok
    except Exception:
        return (time.monotonic() - started) * 1000, False


async def hold(host, port, mode, kib, open_now, closed):
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except Exception:
        closed[0] += 1
        return
    open_now[0] += 1
    try:
        if mode == "headers":
            writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Pad: ")
            chunk = b"a" * 1024
            for _ in range(kib):
                writer.write(chunk)
                await writer.drain()
        elif mode == "keepalive":
            writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
        # Wait for the server to close the connection.
        while await reader.read(65536):
            pass
    except Exception:
        pass
    finally:
        open_now[0] -= 1
        closed[0] += 1
        writer.close()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("pid", type=int)
    parser.add_argument("addr")
    parser.add_argument("mode", choices=["headers", "idle", "keepalive"])
    parser.add_argument("--connections", type=int, default=4000)
    parser.add_argument("--kib", type=int, default=390)
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    host, port = args.addr.rsplit(":", 1)
    port = int(port)
    print(f"before: RSS {rss_mib(args.pid)} MiB, open files {open_files(args.pid)}")
    open_now, closed = [0], [0]
    tasks = [
        asyncio.create_task(hold(host, port, args.mode, args.kib, open_now, closed))
        for _ in range(args.connections)
    ]
    worst_ready, peak_rss = 0.0, 0
    for second in range(args.seconds):
        await asyncio.sleep(1)
        ms, ok = await ready_ms(host, port)
        worst_ready = max(worst_ready, ms if ok else float("inf"))
        rss = rss_mib(args.pid)
        peak_rss = max(peak_rss, rss)
        print(
            f"t={second + 1:>3}s open={open_now[0]:>6} closed={closed[0]:>6} "
            f"RSS={rss} MiB files={open_files(args.pid)} ready={ms:.0f} ms {'ok' if ok else 'FAILED'}"
        )
        if closed[0] == args.connections:
            break
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(2)
    print(
        f"after: RSS {rss_mib(args.pid)} MiB (peak {peak_rss}), open files {open_files(args.pid)}, "
        f"slowest /health/ready {worst_ready:.0f} ms, closed by the server {closed[0]} of {args.connections}"
    )


asyncio.run(main())
