"""Service fixtures: a small models folder (trained once per session) and apps on copies of it.

``models_source`` holds three model folders:

- ``default``: raw pixels -> softmax on the 8x8 digits (grayscale, probabilities);
- ``rgb``: raw pixels -> linear SVM on random 6x6 color images, 3 classes (decision scores);
- ``broken``: a copy of ``default`` whose ``arrays.npz`` was altered (fails to load).
"""
from __future__ import annotations

import io
import shutil

import numpy as np
import pytest


def _encode(image, fmt="PNG", **params):
    """The bytes of a PIL image (or a uint8 array) saved as ``fmt``."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


@pytest.fixture(scope="session")
def models_source(tmp_path_factory):
    """The pristine models folder; tests that change a folder use ``models_dir`` instead."""
    from cvpipe.commands import train
    from pipeline.model import ImagePipeline, save

    root = tmp_path_factory.mktemp("models")
    train("digits", "raw", "softmax:n_epochs=5", root / "default", progress=False)
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(30, 6, 6, 3), dtype=np.uint8)
    y = np.repeat([0, 1, 2], 10)
    X[y == 1, ..., 0] = 255  # learnable: class 1 is red, class 2 is blue
    X[y == 2, ..., 2] = 255
    save(ImagePipeline("raw", "svm:n_epochs=20", class_names=["noise", "red", "blue"]).fit(X, y), root / "rgb")
    shutil.copytree(root / "default", root / "broken")
    arrays = root / "broken" / "arrays.npz"
    data = bytearray(arrays.read_bytes())
    data[-40] ^= 0xFF
    arrays.write_bytes(bytes(data))
    return root


@pytest.fixture
def models_dir(models_source, tmp_path):
    """A copy of ``models_source`` this test may change."""
    return shutil.copytree(models_source, tmp_path / "models")


def _make_app(models, **config):
    from service import create_app

    return create_app({"CVPIPE_MODELS": str(models), "TESTING": True, **config})


@pytest.fixture(scope="session")
def encode():
    """``encode(image, fmt="PNG", **params)``: the bytes of a PIL image or uint8 array."""
    return _encode


@pytest.fixture(scope="session")
def make_app():
    """``make_app(models_folder, **CVPIPE_config)``: a test app."""
    return _make_app


@pytest.fixture
def app(models_source):
    return _make_app(models_source)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def digit_png(digits_test, models_source):
    """A digits test image the default model gets right, as PNG, and its label."""
    from pipeline.model.artifacts import load

    right = load(models_source / "default").predict(digits_test.images[:20]) == digits_test.labels[:20]
    i = int(np.flatnonzero(right)[0])
    return _encode(digits_test.images[i]), int(digits_test.labels[i])


@pytest.fixture(scope="session")
def api_error():
    """``api_error(response, status, code=None)``: assert a JSON error answer; returns its message."""
    return _assert_error


def _assert_error(response, status, code=None):
    """``response`` is the JSON error ``status`` (with ``code``); returns its message."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert set(error) == {"code", "message"} and isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error["message"]
