"""Feature-extraction throughput on the 10,000 Fashion-MNIST test images (28x28 uint8).

Measures, in one run on one machine, images per second of:

* our batched ``HOG`` (``device="cpu"``; 9 orientations, 7x7 cells, 2x2 blocks, L2-Hys),
* ``skimage.feature.hog`` called image by image (the same parameters, the same output),
* OpenCV's ``cv2.HOGDescriptor((28, 28), (14, 14), (7, 7), (7, 7), 9).compute`` per image
  (the same geometry, 324 features; OpenCV interpolates votes, so values differ),

and the ratios ours/skimage (target >= 10x) and ours/OpenCV (target >= 1.0x). Also
``ColorHistogram`` and ``BagOfVisualWords`` where those extractors import.

Usage::

    python bench/bench_features.py [--n N] [--repeat R]

Each figure is the median of ``R`` timed repeats after one warm-up, with
``time.perf_counter``. The per-image peers are timed on at most ``--peer-n`` images
(default 2,000) to keep the run short; a rate is a rate.
"""
from __future__ import annotations

import argparse
import gzip
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_SKIMAGE = 10.0
TARGET_OPENCV = 1.0
IDX_FILE = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
HOG_PARAMS = dict(orientations=9, pixels_per_cell=(7, 7), cells_per_block=(2, 2), block_norm="L2-Hys")


def _read_idx_images(path):
    """Images of a (gzipped) IDX3 ubyte file, (n, rows, cols) uint8."""
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    magic, n, rows, cols = np.frombuffer(data[:16], dtype=">u4")
    if magic != 2051:
        raise ValueError(f"{path}: expected IDX3 ubyte magic 2051, got {magic}")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows, cols)


def load_images():
    """The Fashion-MNIST test images and where they came from."""
    try:
        from pipeline.data.datasets import load_dataset

        return np.asarray(load_dataset("fashion-mnist", split="test").images), "pipeline.data.datasets"
    except Exception as exc:  # not written yet, or no data there: read the file directly
        print(f"(pipeline.data.datasets unavailable: {exc!r}; reading {IDX_FILE})")
        return _read_idx_images(IDX_FILE), str(IDX_FILE)


def rates(jobs, repeat):
    """Median images per second of each job over ``repeat`` runs, after one warm-up each.

    ``jobs`` maps a name to ``(fn, n_images)``. The jobs take turns within each repeat,
    so a change in the machine's load touches all of them alike.
    """
    times = {name: [] for name in jobs}
    for fn, _ in jobs.values():
        fn()
    for _ in range(repeat):
        for name, (fn, _) in jobs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: n / statistics.median(times[name]) for name, (_, n) in jobs.items()}


def verdict(ratio, target):
    return f"{ratio:7.2f}x  (target >= {target:g}x: {'met' if ratio >= target else 'NOT met'})"


def bench_hog(images, peer_images, repeat):
    import cv2
    from skimage.feature import hog

    from features.hog import HOG

    ours = HOG(**HOG_PARAMS, device="cpu").fit(images[:1])
    descriptor = cv2.HOGDescriptor((28, 28), (14, 14), (7, 7), (7, 7), 9)
    measured = rates({
        "ours": (lambda: ours.transform(images), len(images)),
        "skimage": (lambda: [hog(im, **HOG_PARAMS, feature_vector=True) for im in peer_images],
                    len(peer_images)),
        "opencv": (lambda: [descriptor.compute(im) for im in peer_images], len(peer_images)),
    }, repeat)
    ours_rate, skimage_rate, opencv_rate = measured["ours"], measured["skimage"], measured["opencv"]
    print(f"HOG ours (batched, cpu)          {ours_rate:12,.0f} images/s  ({len(images)} images)")
    print(f"HOG skimage.feature.hog per image {skimage_rate:11,.0f} images/s  ({len(peer_images)} images)")
    print(f"HOG cv2.HOGDescriptor per image  {opencv_rate:12,.0f} images/s  ({len(peer_images)} images)")
    print(f"ours / skimage  {verdict(ours_rate / skimage_rate, TARGET_SKIMAGE)}")
    print(f"ours / OpenCV   {verdict(ours_rate / opencv_rate, TARGET_OPENCV)}")
    check = np.abs(ours.transform(peer_images[:50])
                   - np.stack([hog(im, **HOG_PARAMS) for im in peer_images[:50]])).max()
    print(f"max |ours - skimage| on 50 images: {check:.2e}")


def bench_other(images, repeat):
    fit_images = images[:2000]
    for module, name, make in [
        ("features.color", "ColorHistogram", lambda cls: cls()),
        ("features.bovw", "BagOfVisualWords", lambda cls: cls(random_state=0)),
    ]:
        try:
            cls = getattr(__import__(module, fromlist=[name]), name)
        except Exception as exc:
            print(f"{name:33s} not available ({exc!r})")
            continue
        extractor = make(cls).fit(fit_images)
        r = rates({name: (lambda: extractor.transform(images), len(images))}, repeat)[name]
        print(f"{name + ' transform':33s}{r:12,.0f} images/s  ({len(images)} images, fit on 2000)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="images to transform (default 10000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed repeats, median taken (default 5)")
    parser.add_argument("--peer-n", type=int, default=2_000,
                        help="images for the per-image peers (default 2000)")
    args = parser.parse_args(argv)

    import cv2
    import skimage
    import sklearn

    images, source = load_images()
    images = np.ascontiguousarray(images[: args.n])
    peer_images = images[: args.peer_n]
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"numpy {np.__version__}, scikit-image {skimage.__version__}, "
          f"scikit-learn {sklearn.__version__}, opencv {cv2.__version__}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    print(f"data: {images.shape} {images.dtype} from {source}; median of {args.repeat} repeats")
    print()
    bench_hog(images, peer_images, args.repeat)
    print()
    bench_other(images, args.repeat)


if __name__ == "__main__":
    main()
