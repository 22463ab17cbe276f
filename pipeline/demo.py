"""``make demo``: extract HOG features of the demo dataset and summarize them.

The demo dataset is the Fashion-MNIST test split when it is on this machine (Debian's
``dataset-fashion-mnist``, ``$CVPIPE_DATA`` or ``~/.cache/cvpipe``), else
scikit-learn's bundled 8x8 digits; the summary says which.
"""
from __future__ import annotations

import logging

import numpy as np

from pipeline.datasets import DatasetNotFoundError, load_dataset
from pipeline.extract import load_features, run_extraction

logger = logging.getLogger(__name__)


def choose_demo_dataset():
    """Return ``(dataset, features spec, why)``: Fashion-MNIST test if present, else digits."""
    try:
        data = load_dataset("fashion-mnist", split="test")
        return data, "hog:pixels_per_cell=7x7,cells_per_block=2x2", "Fashion-MNIST found locally"
    except DatasetNotFoundError as exc:
        logger.info("Fashion-MNIST not found (%s); using scikit-learn's digits", exc)
        data = load_dataset("digits", split="train")
        return data, "hog:pixels_per_cell=4x4,cells_per_block=1x1", (
            "Fashion-MNIST not found locally (`cvpipe data fetch fashion-mnist` or "
            "`apt-get install dataset-fashion-mnist`), so scikit-learn's digits"
        )


def run_demo(out_dir="runs/demo", progress=True):
    """Run the demo extraction and return a summary dict."""
    data, spec, why = choose_demo_dataset()
    manifest = run_extraction(data, spec, out_dir, progress=progress)
    features, labels, _ = load_features(out_dir)
    counts = np.bincount(labels, minlength=len(data.class_names))
    return {
        "dataset": f"{data.name} ({data.split} split)",
        "why": why,
        "images": f"{len(data)} x {'x'.join(map(str, data.images.shape[1:]))} {data.images.dtype}",
        "features": spec,
        "feature_matrix": f"{features.shape[0]} x {features.shape[1]} {features.dtype}, "
        f"{np.count_nonzero(features) / features.size:.1%} non-zero, "
        f"mean {float(features.mean()):.4f}",
        "classes": ", ".join(f"{name}: {c}" for name, c in zip(data.class_names, counts)),
        "time": f"{manifest['timings']['total_s']:.2f} s in all, "
        f"{manifest['timings']['images_per_s'] or 'n/a'} images/s through the job (worker start-up included)",
        "written": f"{out_dir}/features.npy, labels.npy, manifest.json",
    }
