"""What the steps of one /predict request cost in-process, each measured by swapping it out.

    python bench/bench_service_steps.py [--blocks 30] [--block-size 100]

The service app (``bench/_service_wsgi.py``, with ``/hello``) is called as WSGI in this
process, no server, one BLAS thread, on a HOG 7x7 + softmax model trained as
``bench_service.py`` trains it, with the same one-image multipart body. It prints the
median time of a /hello and a /predict request, then for each step the median time of
/predict with the step as the service does it and with the step swapped, in interleaved
blocks (``--blocks`` pairs of ``--block-size`` requests, so the machine's drift hits both
alike), and the median and quartiles of the per-block difference "served minus swapped"
(positive: the swap is faster). Swaps marked "(bench
only)" drop work the service must do (input checks, EXIF orientation, per-model
metrics): they bound what trimming could give, they are not options. Swaps marked
"(the old way)" put back what the service did before, to measure a change.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as gunicorn_conf sets for each worker
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from _common import machine_line  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent


def _swaps(app):
    """``{name: [(object, attribute, replacement), ...]}``; imported after CVPIPE_MODELS is set."""
    from flask import jsonify

    import pipeline._folder
    import service.api
    from classifiers.losses import softmax

    def bare_scores(model, batch):
        features = model._standardize(model.features_._transform(batch))
        return softmax(features @ model.classifier_.W_ + model.classifier_.b_), "probability"

    class _NoCounters:
        def labels(self, *args):
            return self

        def inc(self, *args):
            pass

        def observe(self, *args):
            pass

    metrics = app.extensions["cvpipe"].metrics
    return {
        "answer through Flask's jsonify (the old way)": [(service.api, "_json_answer", jsonify)],
        "no input checks in features and classifier (bench only)": [(service.api, "class_scores", bare_scores)],
        "no EXIF, mode or size step (bench only)": [(pipeline._folder, "image_to_array",
                                                     lambda im, mode, target: np.asarray(im))],
        "no per-model image counters (bench only)": [(metrics, "images", _NoCounters()),
                                                     (metrics, "batch", _NoCounters())],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=30, help="interleaved pairs of blocks per step")
    parser.add_argument("--block-size", type=int, default=100, help="requests per block")
    args = parser.parse_args(argv)
    from bench_service import multipart, png_bytes, train_model
    from werkzeug.test import EnvironBuilder

    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="cvpipe-bench-steps-") as tmp:
        images = train_model(Path(tmp) / "models")
        os.environ["CVPIPE_MODELS"] = str(Path(tmp) / "models")
        sys.path.insert(0, str(BENCH_DIR))
        from _service_wsgi import app

        body, ctype = multipart([png_bytes(images[0])])
        environs = {"hello": EnvironBuilder(path="/hello").get_environ(),
                    "predict": EnvironBuilder(path="/predict", query_string="top_k=5", method="POST", data=body,
                                              content_type=ctype).get_environ()}

        def request(name):
            environ = dict(environs[name], **{"wsgi.input": io.BytesIO(body)})
            status = []
            result = app(environ, lambda s, headers, exc_info=None: status.append(s))
            b"".join(result)
            result.close()
            if not status[0].startswith("200"):
                raise RuntimeError(f"{name} answered {status[0]}")

        def block(name, n):
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                request(name)
                times.append(time.perf_counter() - t0)
            return statistics.median(times)

        for name in environs:
            block(name, 500)  # warm-up: kernels compiled, caches filled
        print(f"in-process medians: /hello {block('hello', 3000) * 1e6:.1f} us, "
              f"/predict {block('predict', 3000) * 1e6:.1f} us\n")
        print(f"{'step swapped':<58}{'as served':>11}{'swapped':>10}{'served-swapped':>16}{'q25':>7}{'q75':>7}  (us)")
        for label, swaps in _swaps(app).items():
            originals = [(obj, attribute, getattr(obj, attribute)) for obj, attribute, _ in swaps]
            served, swapped = [], []
            for _ in range(args.blocks):
                served.append(block("predict", args.block_size))
                for obj, attribute, replacement in swaps:
                    setattr(obj, attribute, replacement)
                try:
                    request("predict")  # the swap works (and is warm)
                    swapped.append(block("predict", args.block_size))
                finally:
                    for obj, attribute, original in originals:
                        setattr(obj, attribute, original)
            diff = np.array(served) - np.array(swapped)
            print(f"{label:<58}{statistics.median(served) * 1e6:>11.1f}{statistics.median(swapped) * 1e6:>10.1f}"
                  f"{np.median(diff) * 1e6:>16.1f}{np.percentile(diff, 25) * 1e6:>7.1f}"
                  f"{np.percentile(diff, 75) * 1e6:>7.1f}")


if __name__ == "__main__":
    main()
