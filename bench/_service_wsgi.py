"""The service app with two extra routes for ``bench_service.py`` only; not part of the public API.

``GET /hello`` goes through the same gunicorn worker, Flask app and request hooks as
``/predict`` but does no work, so the ratio of the two measures what a prediction
costs on top of serving a request.

``POST /predict-bare`` (``bench_service.py --bare``) does a prediction's work and
nothing else: the short multipart parser, Pillow's open and decode, the HOG kernel,
the scaler, the softmax and a JSON answer of the same shape; no input checks, no EXIF
orientation, no mode conversion or resizing, no per-model metrics, no NaN-aware
ordering. It gives wrong answers or 500s on anything but a well-formed one-image form
for a HOG + softmax pipeline, so it is never served to users: it measures how far
trimming the app could move /predict's share of hello's rate (an upper bound).
"""
import io
import json
import time

import numpy as np
from flask import Response, g, request
from PIL import Image

from classifiers.losses import softmax
from service.decode import FORMATS, parse_simple_multipart
from service.wsgi import app

_state = app.extensions["cvpipe"]


def _hello():
    return "hello\n", 200, {"Content-Type": "text/plain; charset=utf-8"}


def _predict_bare():
    t0 = time.perf_counter()
    entry = _state.registry.get(_state.registry.default_name())
    g.cvpipe_model = entry.name
    model = entry.model
    files, _, _ = parse_simple_multipart(request.get_data(), request.mimetype_params.get("boundary"))
    with Image.open(io.BytesIO(files[0]), formats=FORMATS) as im:
        image = np.asarray(im)[None]
    features = model._standardize(model.features_._transform(image))
    scores = softmax(features @ model.classifier_.W_ + model.classifier_.b_)[0].tolist()
    order = sorted(range(len(scores)), key=lambda j: -scores[j])[:5]
    top = [{"label": model.class_names_[j], "class_index": j, "score": scores[j]} for j in order]
    answer = {"model": entry.name, "version": entry.version,
              "predictions": [{"label": top[0]["label"], "class_index": order[0], "score": top[0]["score"],
                               "score_kind": "probability", "top_k": top}],
              "took_ms": round((time.perf_counter() - t0) * 1000, 2)}
    return Response(json.dumps(answer, separators=(",", ":")), mimetype="application/json")


app.add_url_rule("/hello", "bench_hello", _hello, methods=["GET"])
app.add_url_rule("/predict-bare", "bench_predict_bare", _predict_bare, methods=["POST"])
