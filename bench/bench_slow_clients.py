"""The service under slow clients: availability for other clients, and when the slow ones are dropped.

    python bench/bench_slow_clients.py [--models models] [--connections 256] [--hold 30]
                                       [--worker-classes balanced,gthread]

For each worker class (cvpipe's "balanced" worker, which reads requests whole in its
event loop, and gunicorn's stock "gthread" as the contrast), a 2-worker x 2-thread server
like `cvpipe serve` faces N connections that each send, at 1 byte/s, either their
headers ("headers") or a POST body ("body"), or send headers and half a body and then
nothing ("stalled"), for ``--hold`` seconds. Meanwhile another client asks `/healthz`
every 0.1 s; printed: the share answered within 1 s, and how long the slow connections
lasted before the server closed them (the read timeout is the server's default).
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

from _common import machine_line

from service.testing import start, stop


async def _slow_client(port, mode, hold, closed_after):
    t0 = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        closed_after.append(0.0)
        return
    body = b"x" * 100_000
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n" % len(body)
    if mode == "headers":
        trickle = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 1000 + b"\r\n\r\n"
    else:
        writer.write(head + (body[: len(body) // 2] if mode == "stalled" else b""))
        trickle = b"" if mode == "stalled" else body
    try:
        for i in range(int(hold)):
            if i < len(trickle):
                writer.write(trickle[i:i + 1])
                await writer.drain()
            try:  # the server closing the connection (or answering 408) ends it
                if await asyncio.wait_for(reader.read(4096), timeout=1.0) == b"":
                    break
            except asyncio.TimeoutError:
                continue
    except OSError:
        pass
    finally:
        closed_after.append(time.monotonic() - t0)
        writer.close()


def _probe(base_url, stop_event, latencies):
    while not stop_event.is_set():
        t0 = time.monotonic()
        try:
            urllib.request.urlopen(f"{base_url}/healthz", timeout=5).read()
            latencies.append(time.monotonic() - t0)
        except OSError:
            latencies.append(None)
        time.sleep(0.1)


def run(base_url, port, mode, n, hold):
    latencies, closed_after, stop_event = [], [], threading.Event()
    prober = threading.Thread(target=_probe, args=(base_url, stop_event, latencies))
    prober.start()

    async def main():
        await asyncio.gather(*(_slow_client(port, mode, hold, closed_after) for _ in range(n)))

    asyncio.run(main())
    stop_event.set()
    prober.join()
    within = sum(1 for t in latencies if t is not None and t < 1.0) / max(1, len(latencies))
    lasted = statistics.median(closed_after) if closed_after else float("nan")
    return within, len(latencies), lasted


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--hold", type=float, default=30.0)
    parser.add_argument("--worker-classes", default="balanced,gthread")
    args = parser.parse_args()
    print(machine_line())
    print(f"command: python bench/bench_slow_clients.py --connections {args.connections} --hold {args.hold:g} "
          f"--worker-classes {args.worker_classes}")
    print("| worker class | slow connections | /healthz within 1 s | probes | slow connection lasted (median) |")
    print("| --- | --- | --- | --- | --- |")
    for worker_class in args.worker_classes.split(","):
        proc = start(args.models, workers=2, threads=2, worker_class=worker_class, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, ready_timeout=120)
        try:
            port = int(proc.base_url.rsplit(":", 1)[1])
            for mode in ("headers", "body", "stalled"):
                within, probes, lasted = run(proc.base_url, port, mode, args.connections, args.hold)
                print(f"| {worker_class} | {args.connections} {mode} | {within:.1%} | {probes} | {lasted:.1f} s |")
        finally:
            stop(proc)


if __name__ == "__main__":
    main()
