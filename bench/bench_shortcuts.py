"""What each shortcut on the service path is worth, measured end to end in-process.

    python bench/bench_shortcuts.py [--requests 200] [--blocks 10]

A shortcut is a fast path beside a library path; it stays only where a user would see
its gain end to end. Kept today, each held equal to its library path by tests:
``FeatureStack.transform`` calling its extractors itself instead of ``FeatureUnion``'s
joblib dispatch, the classifiers' predict-time check answering at once for arrays
scikit-learn's ``validate_data`` would pass unchanged, ``ImagePipeline`` standardizing
with the scaler's arithmetic instead of ``StandardScaler.transform``, and a short
multipart parser for the plain forms clients send, before werkzeug's.
Removed: the extractors and the pipeline skipping ``check_is_fitted``, the answer written
by ``json.dumps`` instead of Flask's ``jsonify``; and measured for the record, the
extractors' parameter checks in ``transform`` (kept: they catch ``set_params`` after fit).

Each is switched to its other path (a bench-only patch of the shipped code) and the whole
app is timed answering a real multipart ``POST /predict`` (werkzeug's test client:
parsing, decoding, features, scaler, classifier, ranking, JSON, metrics) for the
default model of ``make demo`` (HOG at 7x7 and 4x4 cells -> softmax, 28x28 Fashion-MNIST
images; digits resized to 28x28 where Fashion-MNIST is missing), in interleaved blocks
so that the machine's drift hits every variant alike. It prints the median time per
request of each variant and the difference to the code as shipped.

Under gunicorn a request also costs the server's work; ``bench_service.py --switch
NAMES`` measures the same switches as requests a second served by gunicorn.
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from contextlib import ExitStack
from unittest import mock

import numpy as np
from _common import machine_line
from flask import Response
from PIL import Image
from sklearn.pipeline import FeatureUnion
from sklearn.utils.validation import validate_data

import classifiers.linear
import features._base
import pipeline.model.image_pipeline
import service.api
import service.decode
from features import FeatureStack
from pipeline.data import DatasetNotFoundError, load_dataset
from pipeline.model import ImagePipeline, save
from service import create_app


def _stack_library(self, X, **params):
    return np.asarray(FeatureUnion.transform(self, X, **params), dtype=np.float32)


def _validate_library(estimator, X, dtype):
    return validate_data(estimator, X, reset=False, dtype=dtype)


def _standardize_library(self, Z):
    return self.scaler_.transform(Z)


def _fitted_when_it_has(attribute):
    def check(estimator, attributes=None, *args, **kwargs):
        if hasattr(estimator, attributes or attribute):
            return None
        return _REAL_CHECK_IS_FITTED(estimator, attributes, *args, **kwargs)
    return check


def _form_by_werkzeug(request):
    """The form read by werkzeug's parser alone (the short parser left out)."""
    with mock.patch.object(service.decode, "parse_simple_multipart", lambda body, boundary: None):
        return _REAL_FROM_FORM(request)


def _json_dumps(answer):
    return Response(json.dumps(answer, separators=(",", ":")) + "\n", mimetype="application/json")


_REAL_CHECK_IS_FITTED = features._base.check_is_fitted
_REAL_FROM_FORM = service.decode._from_form
#: name -> (the other path, whether the shortcut is kept, the patches that switch to the other path).
SWITCHES = {
    "stack": ("FeatureUnion.transform instead of FeatureStack's one-process path", True,
              [(FeatureStack, "transform", _stack_library)]),
    "validate": ("validate_data instead of the classifier's short predict-time check", True,
                 [(classifiers.linear, "check_predict_input", _validate_library)]),
    "scaler": ("StandardScaler.transform instead of its arithmetic", True,
               [(ImagePipeline, "_standardize", _standardize_library)]),
    "form": ("werkzeug's form parser instead of the short one", True,
             [(service.decode, "_from_form", _form_by_werkzeug)]),
    "params": ("extractors skip check_params in transform", True,
               [(features._base, "check_params", lambda estimator: None)]),
    "fitted": ("extractors and pipeline skip check_is_fitted (removed)", False, [
        (features._base, "check_is_fitted", _fitted_when_it_has("image_shape_")),
        (pipeline.model.image_pipeline, "check_is_fitted", _fitted_when_it_has("classifier_"))]),
    "jsonify": ("answer by json.dumps instead of jsonify (removed)", False, [(service.api, "jsonify", _json_dumps)]),
}


def apply(names, stack):
    """Enter the patches of the switches ``names`` (comma-separated) on ``stack`` (an ExitStack)."""
    for name in names.split(","):
        for owner, attribute, value in SWITCHES[name][2]:
            stack.enter_context(mock.patch.object(owner, attribute, value))


#: variant -> the switches it applies.
VARIANTS = {"as shipped": "", **{label: name for name, (label, _, _) in SWITCHES.items()},
            "every kept shortcut on its library path": ",".join(n for n, (_, kept, _) in SWITCHES.items()
                                                                  if kept and n != "params")}


def build_client():
    try:
        train, test = load_dataset("fashion-mnist", "train").take(10_000), load_dataset("fashion-mnist", "test")
        images, labels, names = train.images, train.labels, train.class_names
        sample = test.images[0]
    except DatasetNotFoundError:
        digits = load_dataset("digits", "train")
        images = np.stack([np.asarray(Image.fromarray(im).resize((28, 28))) for im in digits.images])
        labels, names, sample = digits.labels, digits.class_names, images[0]
    model = ImagePipeline("hog:pixels_per_cell=7x7,hog:pixels_per_cell=4x4", "softmax:n_epochs=3,random_state=0")
    model.fit(images, labels, class_names=names)
    folder = tempfile.mkdtemp()
    save(model, f"{folder}/default")
    buf = io.BytesIO()
    Image.fromarray(sample).save(buf, format="PNG")
    return create_app({"CVPIPE_MODELS": folder}).test_client(), buf.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per block")
    parser.add_argument("--blocks", type=int, default=10, help="timed blocks per variant, interleaved")
    args = parser.parse_args()
    print(machine_line())
    client, png = build_client()

    def request():
        response = client.post("/predict", data={"image": (io.BytesIO(png), "a.png")},
                               content_type="multipart/form-data")
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()["predictions"]

    expected = request()
    times = {name: [] for name in VARIANTS}
    for block in range(args.blocks + 1):  # block 0 warms every variant up, unrecorded
        order = list(VARIANTS) if block % 2 else list(reversed(VARIANTS))
        for name in order:
            with ExitStack() as stack:
                if VARIANTS[name]:
                    apply(VARIANTS[name], stack)
                assert request() == expected, f"{name}: a different answer"
                t0 = time.perf_counter()
                for _ in range(args.requests):
                    request()
                if block:
                    times[name].append((time.perf_counter() - t0) / args.requests * 1e6)
    base = statistics.median(times["as shipped"])
    print(f"\none-image POST /predict in-process, median of {args.blocks} blocks of {args.requests} requests")
    print(f"{'variant':<72}{'us/request':>11}{'vs shipped':>11}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<72}{median:>11.1f}{(median - base) / base:>+11.1%}")


if __name__ == "__main__":
    main()
