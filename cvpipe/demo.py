"""``make demo``: train the default model if it is missing, then serve it.

The demo dataset is Fashion-MNIST when it is on this machine (Debian's
``dataset-fashion-mnist``, ``$CVPIPE_DATA`` or ``~/.cache/cvpipe``) or can be fetched,
else scikit-learn's bundled 8x8 digits; the output says which.
"""
from __future__ import annotations

import logging
from pathlib import Path

from PIL import Image

from cvpipe.commands import train
from pipeline.data import DatasetNotFoundError, fetch_dataset, load_dataset
from pipeline.model import read_manifest

logger = logging.getLogger(__name__)

#: dataset -> (feature spec, classifier spec) of the default model: trains in well under a minute.
DEFAULT_PIPELINES = {
    "fashion-mnist": ("hog:pixels_per_cell=7x7,hog:pixels_per_cell=4x4", "softmax:learning_rate=0.01,n_epochs=10"),
    "digits": ("raw", "softmax:n_epochs=40,batch_size=32"),
}


def choose_demo_dataset(fetch=True):
    """Return ``(name, why)``: Fashion-MNIST if present or fetchable, else digits."""
    try:
        load_dataset("fashion-mnist", split="test")
        return "fashion-mnist", "Fashion-MNIST found on this machine"
    except DatasetNotFoundError as exc:
        logger.info("Fashion-MNIST not found (%s)", exc)
    if fetch:
        try:
            fetch_dataset("fashion-mnist")
            return "fashion-mnist", "Fashion-MNIST downloaded into the cache"
        except Exception as exc:  # no network, a mirror down: fall back, say why
            logger.info("could not fetch Fashion-MNIST: %s", exc)
    return "digits", ("Fashion-MNIST is neither on this machine nor fetchable "
                      "(`apt-get install dataset-fashion-mnist`), so scikit-learn's 8x8 digits")


def prepare_demo(models_dir="models", fetch=True, progress=True):
    """Train ``models_dir/default`` if it is missing and write a sample image; returns a summary."""
    name, why = choose_demo_dataset(fetch)
    model = Path(models_dir) / "default"
    if (model / "manifest.json").is_file():
        manifest = read_manifest(model)
        summary = {"model": str(model), "status": "already trained", "metrics": manifest.get("metrics", {})}
    else:
        features, classifier = DEFAULT_PIPELINES[name]
        summary = train(name, features, classifier, model, progress=progress)
        summary["status"] = "trained now"
    sample = Path(models_dir).parent / "runs" / "demo" / "sample.png"
    sample.parent.mkdir(parents=True, exist_ok=True)
    test = load_dataset(name, "test")
    Image.fromarray(test.images[0]).save(sample)
    summary.update(dataset=name, why=why, sample=str(sample), sample_label=test.class_names[test.labels[0]])
    return summary
