"""The service serves models whose classifier is a scikit-learn one (saved through skops)."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def sklearn_models(tmp_path_factory):
    """A models folder: ``default`` (raw -> LogisticRegression, probabilities) and ``forest``
    (raw -> RandomForestClassifier), on the 8x8 digits; and the first ten test images."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from pipeline.data import load_dataset
    from pipeline.model import ImagePipeline, save

    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    root = tmp_path_factory.mktemp("sklearn-served")
    names = train.class_names
    save(ImagePipeline("raw", LogisticRegression(max_iter=300), class_names=names).fit(train.images, train.labels),
         root / "default")
    save(ImagePipeline("raw", RandomForestClassifier(n_estimators=10, random_state=0), class_names=names)
         .fit(train.images, train.labels), root / "forest")
    return root, test.images[:10]


@pytest.mark.parametrize("name, path", [("default", "/predict"), ("default", "/v1/models/default/predict"),
                                        ("forest", "/v1/models/forest/predict")])
def test_the_service_answers_as_the_loaded_model(sklearn_models, make_app, encode, name, path):
    from pipeline.model import load

    root, images = sklearn_models
    model = load(root / name)
    expected, kind = model.class_scores(images)
    labels = model.predict(images)
    client = make_app(root).test_client()
    models = {m["name"]: m for m in client.get("/v1/models").get_json()["models"]}
    assert models[name]["status"] == "ready", models[name]
    description = client.get(f"/v1/models/{name}").get_data(as_text=True)
    assert f"sklearn.ensemble.{type(model.classifier_).__name__}" in description if name == "forest" else \
        "sklearn.linear_model.LogisticRegression" in description
    for image, label, scores in zip(images, labels, expected):
        response = client.post(path, data=encode(image), content_type="image/png")
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        body = response.get_json()
        (p,) = body["predictions"]
        assert body["model"] == name
        assert p["class_index"] == int(label) and p["label"] == model.class_names_[int(label)]
        assert p["score_kind"] == kind == "probability"
        assert p["score"] == pytest.approx(float(scores.max()))
        assert [t["class_index"] for t in p["top_k"]] == np.argsort(-scores, kind="stable")[:5].tolist()
