"""The peer of ``bench_service.py --peer``: what a user would write instead of cvpipe.

A Flask app doing ``skimage.feature.hog`` (7x7 cells, as the served cvpipe model) and a
scikit-learn ``StandardScaler`` + ``LogisticRegression`` pipeline loaded with joblib,
answering the same multipart ``POST /predict`` (field ``image``) with the top-5 classes.
``CVPIPE_PEER_MODEL`` names the joblib file (written by ``fit_peer``).
"""
import io
import os

import joblib
import numpy as np
from flask import Flask, jsonify, request
from PIL import Image
from skimage.feature import hog

app = Flask(__name__)
pipeline = joblib.load(os.environ["CVPIPE_PEER_MODEL"]) if "CVPIPE_PEER_MODEL" in os.environ else None


def features(image):
    return hog(image, orientations=9, pixels_per_cell=(7, 7), cells_per_block=(2, 2), block_norm="L2-Hys")


def fit_peer(images, labels, path):
    """Fit the peer's pipeline on 28x28 uint8 images and save it with joblib."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.stack([features(im) for im in images])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, labels)
    joblib.dump(model, path)


@app.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@app.post("/predict")
def predict():
    files = request.files.getlist("image")
    if not files:
        return jsonify({"error": "no image"}), 400
    X = np.stack([features(np.asarray(Image.open(io.BytesIO(f.read())).convert("L").resize((28, 28))))
                  for f in files])
    probabilities = pipeline.predict_proba(X)
    k = min(5, probabilities.shape[1])
    answers = []
    for row in probabilities:
        top = np.argsort(-row)[:k]
        answers.append({"label": str(pipeline.classes_[top[0]]), "score": float(row[top[0]]),
                        "top_k": [{"label": str(pipeline.classes_[j]), "score": float(row[j])} for j in top]})
    return jsonify({"predictions": answers})
