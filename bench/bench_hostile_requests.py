"""The service while 4 clients keep sending costly requests: do other clients still get answers?

    python bench/bench_hostile_requests.py [--models models] [--seconds 20]

A 2-worker x 2-thread server like `cvpipe serve`. 4 clients post, each as fast as it is
answered, in turn: 64 PNG headers claiming 6000x6000 each in one request (each image
within the per-image limit, the request far over CVPIPE_MAX_REQUEST_PIXELS), and a 16-bit
6324x6324 PNG (81 KB, 40 M pixels: within both budgets, the costliest image the service
still decodes). Meanwhile another client asks /healthz and posts a small image to
/predict every 0.1 s. Printed: the answers the 4 clients got and how long they took, and
the share of the other client's requests answered within 1 s.
"""
from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
from _common import machine_line
from PIL import Image

from pipeline.data.testing import png_header
from service.testing import start, stop


def _png_16bit(side):
    pixels = np.zeros((side, side), np.uint16)
    pixels[::7] = 60000
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def _multipart(blobs):
    boundary = uuid.uuid4().hex
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{i}.png\"\r\n"
                    f"Content-Type: image/png\r\n\r\n".encode() + blob + b"\r\n" for i, blob in enumerate(blobs))
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _post(url, body, ctype, timeout=60):
    request = urllib.request.Request(url, data=body, headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read()
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    print(machine_line())
    print(f"command: python bench/bench_hostile_requests.py --seconds {args.seconds:g}")
    costly = [_multipart([png_header(6000, 6000)] * 64), _multipart([_png_16bit(6324)])]
    small = _multipart([_png_16bit(28)])
    proc = start(args.models, workers=2, threads=2, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                 ready_timeout=120)
    stop_event, hostile, probes = threading.Event(), {0: [], 1: []}, []

    def hostile_client(first):
        i = first
        while not stop_event.is_set():
            t0 = time.monotonic()
            status = _post(f"{proc.base_url}/predict", *costly[i % 2])
            hostile[i % 2].append((status, time.monotonic() - t0))
            i += 1

    def prober():
        while not stop_event.is_set():
            for call in (lambda: urllib.request.urlopen(f"{proc.base_url}/healthz", timeout=5).status,
                         lambda: _post(f"{proc.base_url}/predict", *small, timeout=5)):
                t0 = time.monotonic()
                try:
                    status = call()
                except OSError:
                    status = None
                probes.append((status, time.monotonic() - t0))
            time.sleep(0.1)

    try:
        threads = [threading.Thread(target=hostile_client, args=(k,)) for k in range(4)]
        threads.append(threading.Thread(target=prober))
        for t in threads:
            t.start()
        time.sleep(args.seconds)
        stop_event.set()
        for t in threads:
            t.join(120)
    finally:
        stop(proc)
    for kind, label in ((0, "64 x 6000x6000 headers"), (1, "16-bit 6324x6324 PNG")):
        statuses = sorted({s for s, _ in hostile[kind]}, key=str)
        seconds = [t for _, t in hostile[kind]]
        print(f"hostile: {label}: {len(seconds)} requests, answers {statuses}, median "
              f"{statistics.median(seconds) * 1e3:.0f} ms" if seconds else f"hostile: {label}: none answered")
    ok = sum(1 for status, t in probes if status == 200 and t < 1.0)
    print(f"other client: {len(probes)} requests (/healthz and a small /predict), {ok / max(1, len(probes)):.1%} "
          f"answered 200 within 1 s; slowest {max(t for _, t in probes) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
