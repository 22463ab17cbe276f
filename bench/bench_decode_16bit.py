"""Memory and time to decode one large 16-bit grayscale PNG into a model's input.

    python bench/bench_decode_16bit.py [--side 6324]

A 6324x6324 16-bit PNG of mostly zeros is about 80 KB on the wire and 40 M pixels (within
the service's per-image limit); printed: the process's peak RSS growth and the seconds of
one `pipeline.data.images.decode_image` into a 28x28 "L" input, as the service does it.
"""
from __future__ import annotations

import argparse
import io
import resource
import time

import numpy as np
from _common import machine_line
from PIL import Image

from pipeline.data import images


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=6324)
    args = parser.parse_args()
    pixels = np.zeros((args.side, args.side), np.uint16)
    pixels[::7] = 60000
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    data = buf.getvalue()
    del pixels
    print(machine_line())
    print(f"command: python bench/bench_decode_16bit.py --side {args.side}")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    images.decode_image(data, (28, 28), "L", formats=images.SAFE_FORMATS, max_pixels=40_000_000)
    seconds = time.perf_counter() - t0
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024  # Linux: KiB
    print(f"{len(data):,} bytes of PNG, {args.side}x{args.side} 16-bit: peak RSS +{grown:,.0f} MB, {seconds:.2f} s")


if __name__ == "__main__":
    main()
