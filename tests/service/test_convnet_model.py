"""A ConvNet model served: trained and saved like any other, answered by ``POST /predict``."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def convnet_models(tmp_path_factory):
    from pipeline.data.datasets import load_dataset
    from pipeline.model import ImagePipeline, save

    data = load_dataset("digits")
    root = tmp_path_factory.mktemp("cnn_models")
    pipe = ImagePipeline("raw", "convnet:filters=8,kernel_sizes=3,hidden_sizes=32,n_epochs=3,tol=null,random_state=0")
    pipe.fit(data.images[:1200], data.labels[:1200], class_names=data.class_names)
    save(pipe, root / "cnn")
    return root, pipe, data


def test_predict_answers_with_the_convnet(convnet_models, make_app, encode):
    root, pipe, data = convnet_models
    right = np.flatnonzero(pipe.predict(data.images[1200:1300]) == data.labels[1200:1300])
    i = 1200 + int(right[0])
    client = make_app(root).test_client()
    response = client.post("/predict", data=encode(data.images[i]), content_type="image/png")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["model"] == "cnn"
    (p,) = body["predictions"]
    assert p["label"] == data.class_names[data.labels[i]] and p["score_kind"] == "probability"
    expected = pipe.predict_proba(data.images[i : i + 1])[0]
    assert p["score"] == pytest.approx(float(expected.max()), rel=1e-6)


def test_an_image_of_another_size_and_mode_is_decoded_to_the_models(convnet_models, make_app, encode):
    """The service's one decoder brings any image to the model's 8x8 grayscale before the ConvNet."""
    root, _, data = convnet_models
    client = make_app(root).test_client()
    rgb = np.zeros((24, 30, 3), np.uint8)
    rgb[4:20, 12:18] = 255
    response = client.post("/predict?top_k=3", data=encode(rgb), content_type="image/png")
    assert response.status_code == 200, response.get_data(as_text=True)
    (p,) = response.get_json()["predictions"]
    assert p["label"] in data.class_names and len(p["top_k"]) == 3
