"""The API through Flask's test client: every endpoint, its answers and its errors."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import re

import numpy as np
import pytest

TOKEN = "t0ken"


def _post_png(client, png, path="/predict", **kw):
    return client.post(path, data=png, content_type="image/png", **kw)


# ------------------------------------------------------------------------- predict
def test_predict_raw_body_answers_the_documented_shape(client, digit_png, models_source):
    png, label = digit_png
    body = _post_png(client, png).get_json()
    assert list(body) == ["model", "version", "predictions", "took_ms"]
    assert body["model"] == "default" and body["took_ms"] >= 0
    manifest_sha = hashlib.sha256((models_source / "default" / "manifest.json").read_bytes()).hexdigest()
    assert body["version"] == manifest_sha[:12]
    (p,) = body["predictions"]
    assert p["label"] == str(label) and p["class_index"] == label and p["score_kind"] == "probability"
    assert len(p["top_k"]) == 5 and p["top_k"][0] == {"label": p["label"], "class_index": label, "score": p["score"]}
    scores = [t["score"] for t in p["top_k"]]
    assert scores == sorted(scores, reverse=True) and 0 < p["score"] <= 1


def test_predict_matches_the_cli_predict(client, digit_png, models_source, tmp_path):
    """Same decoding, same scores as ``cvpipe predict`` (cvpipe.batch_predict)."""
    from cvpipe.batch_predict import predict_chunks
    from pipeline.model import load

    png, _ = digit_png
    (tmp_path / "d.png").write_bytes(png)
    ((cli,),) = predict_chunks(load(models_source / "default"), [tmp_path / "d.png"], top_k=3)
    api = _post_png(client, png, "/predict?top_k=3").get_json()["predictions"][0]
    assert {k: v for k, v in cli.items() if k not in ("path", "error")} == api  # one decoder, one ranking


def test_several_images_are_one_batch(client, digit_png, monkeypatch):
    from pipeline.model import ImagePipeline

    batches = []
    real = ImagePipeline.class_scores

    def spy(model, images):
        batches.append(images.shape)
        return real(model, images)

    monkeypatch.setattr(ImagePipeline, "class_scores", spy)
    png, label = digit_png
    files = [(io.BytesIO(png), f"{i}.png") for i in range(3)]
    body = client.post("/predict", data={"image": files}, content_type="multipart/form-data").get_json()
    assert batches == [(3, 8, 8)]
    assert [p["label"] for p in body["predictions"]] == [str(label)] * 3


def test_predict_json_instances(client, digit_png):
    png, label = digit_png
    doc = {"instances": [{"b64": base64.b64encode(png).decode()}] * 2, "top_k": 2}
    body = client.post("/predict", json=doc).get_json()
    assert [len(p["top_k"]) for p in body["predictions"]] == [2, 2]
    assert body["predictions"][0]["label"] == str(label)


@pytest.mark.parametrize("how, expected", [("query", 3), ("form", 4), ("json", 2), ("none", 5), ("huge", 10)])
def test_top_k_from_query_form_or_json(client, digit_png, how, expected):
    png, _ = digit_png
    if how == "query":
        r = _post_png(client, png, "/predict?top_k=3")
    elif how == "form":
        r = client.post("/predict", data={"image": (io.BytesIO(png), "a.png"), "top_k": "4"})
    elif how == "json":
        r = client.post("/predict", json={"instances": [{"b64": base64.b64encode(png).decode()}], "top_k": 2})
    elif how == "huge":
        r = _post_png(client, png, "/predict?top_k=" + "9" * 40)
    else:
        r = _post_png(client, png)
    assert len(r.get_json()["predictions"][0]["top_k"]) == expected


def test_named_model_with_decision_scores_and_clipped_top_k(client, encode):
    # drawn as the fixture's "red" class is (noise, red channel 255): an all-zero green and
    # blue is outside what the SVM saw, and a converged one may call it anything
    red = np.random.default_rng(5).integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
    red[..., 0] = 255
    body = _post_png(client, encode(red), "/v1/models/rgb/predict?top_k=7").get_json()
    (p,) = body["predictions"]
    assert body["model"] == "rgb" and p["score_kind"] == "decision"
    assert p["label"] == "red" and len(p["top_k"]) == 3


def test_default_model_configured_missing_or_absent(models_source, make_app, tmp_path, api_error, digit_png):
    png, _ = digit_png
    app = make_app(models_source, CVPIPE_DEFAULT_MODEL="rgb")
    assert _post_png(app.test_client(), png).get_json()["model"] == "rgb"
    app = make_app(models_source, CVPIPE_DEFAULT_MODEL="gone")
    assert "'gone'" in api_error(_post_png(app.test_client(), png), 503, "no_model")
    api_error(app.test_client().get("/readyz"), 503, "no_model")
    empty = make_app(tmp_path / "nothing-here")
    message = api_error(_post_png(empty.test_client(), png), 503, "no_model")
    assert "CVPIPE_MODELS" in message
    api_error(empty.test_client().get("/readyz"), 503, "no_model")


def test_first_model_is_the_default_without_one_called_default(models_dir, make_app, digit_png):
    import shutil

    shutil.rmtree(models_dir / "default")
    client = make_app(models_dir).test_client()
    assert client.get("/v1/models").get_json()["default"] == "rgb"  # "broken" is not ready
    assert _post_png(client, digit_png[0]).get_json()["model"] == "rgb"


# -------------------------------------------------------------------------- models
def test_list_models_with_status_and_errors(client):
    body = client.get("/v1/models").get_json()
    assert body["default"] == "default"
    by_name = {m["name"]: m for m in body["models"]}
    assert list(by_name) == ["broken", "default", "rgb"]
    assert by_name["default"]["status"] == "ready" and re.fullmatch(r"[0-9a-f]{12}", by_name["default"]["version"])
    assert by_name["broken"]["status"] == "error" and "sha256" in by_name["broken"]["error"]
    assert by_name["broken"]["error"].startswith("broken/arrays.npz")  # no absolute paths leak


def test_model_info_from_the_manifest(client):
    info = client.get("/v1/models/default").get_json()
    assert info["input"] == {"height": 8, "width": 8, "color_mode": "L"}
    assert [c["label"] for c in info["classes"]] == [str(i) for i in range(10)]
    assert info["features"] == "raw" and info["classifier"]["class"] == "classifiers.linear.Softmax"
    assert info["classifier"]["params"]["n_epochs"] == 5 and info["scores"] == "probability"
    assert 0.5 < info["metrics"]["test_accuracy"] <= 1
    rgb = client.get("/v1/models/rgb").get_json()
    assert rgb["input"]["color_mode"] == "RGB" and rgb["scores"] == "decision"
    broken = client.get("/v1/models/broken").get_json()
    assert broken["status"] == "error" and broken["input"]["height"] == 8


def test_unknown_model_info_is_404(client, api_error):
    assert "'nope'" in api_error(client.get("/v1/models/nope"), 404, "model_not_found")


def test_reload_picks_up_a_new_model(models_dir, make_app, digit_png):
    import shutil

    client = make_app(models_dir).test_client()
    shutil.copytree(models_dir / "default", models_dir / "digits2")
    body = client.post("/v1/models/reload").get_json()
    assert body["added"] == ["digits2"] and "default" in body["unchanged"] and body["failed"] == ["broken"]
    assert _post_png(client, digit_png[0], "/v1/models/digits2/predict").status_code == 200


# ---------------------------------------------------------------------- operations
def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["default"] == "default"


def test_metrics_by_endpoint_and_model(client, digit_png):
    _post_png(client, digit_png[0])
    _post_png(client, b"junk")
    client.get("/v1/models/nope")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'cvpipe_requests_total{endpoint="api.predict",method="POST",model="default",status="200"} 1.0' in text
    assert 'cvpipe_errors_total{code="invalid_image",endpoint="api.predict",model="default"} 1.0' in text
    assert 'cvpipe_errors_total{code="model_not_found",endpoint="api.model_info",model=""} 1.0' in text
    assert 'cvpipe_request_duration_seconds_count{endpoint="api.predict",model="default"} 2.0' in text
    assert 'cvpipe_images_predicted_total{model="default"} 1.0' in text
    assert 'cvpipe_models{status="error"} 1.0' in text


def test_each_app_has_its_own_metrics(models_source, make_app, digit_png):
    a, b = make_app(models_source).test_client(), make_app(models_source).test_client()
    _post_png(a, digit_png[0])
    assert 'model="default",status="200"} 1.0' in a.get("/metrics").get_data(as_text=True)
    assert 'endpoint="api.predict"' not in b.get("/metrics").get_data(as_text=True)


def test_metrics_in_multiprocess_mode(models_source, make_app, digit_png, tmp_path, monkeypatch):
    """With PROMETHEUS_MULTIPROC_DIR, values go to files there and /metrics reads them all."""
    from prometheus_client import values

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    value_class = values.MultiProcessValue(lambda: 4242)  # as in a worker started with the variable set
    monkeypatch.setattr(values, "ValueClass", value_class)
    try:
        client = make_app(models_source).test_client()
        _post_png(client, digit_png[0])
        assert list(tmp_path.glob("counter_4242.db"))
        text = client.get("/metrics").get_data(as_text=True)
    finally:
        value_class.close_all_files()
    assert 'cvpipe_requests_total{endpoint="api.predict",method="POST",model="default",status="200"} 1.0' in text


def test_openapi_is_a_valid_document_of_every_route(app, client):
    from openapi_spec_validator import validate

    doc = client.get("/openapi.json").get_json()
    validate(doc)
    assert doc["openapi"].startswith("3.")
    for rule in app.url_map.iter_rules():
        if rule.endpoint.endswith("static"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        assert path in doc["paths"], path
        assert set(doc["paths"][path]) == {m.lower() for m in rule.methods - {"HEAD", "OPTIONS"}}, path


# ------------------------------------------------------------------------- tokens
@pytest.fixture
def secured(models_source, make_app):
    return make_app(models_source, CVPIPE_API_TOKEN=TOKEN).test_client()


@pytest.mark.parametrize("method, path", [("POST", "/predict"), ("POST", "/v1/models/default/predict"),
                                          ("GET", "/v1/models"), ("GET", "/v1/models/default"),
                                          ("POST", "/v1/models/reload")])
def test_token_protects_the_api(secured, api_error, digit_png, method, path):
    kw = {"data": digit_png[0], "content_type": "image/png"} if "predict" in path else {}
    response = secured.open(path, method=method, **kw)
    api_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    api_error(secured.open(path, method=method, headers={"Authorization": "Bearer nope"}, **kw), 401)
    ok = secured.open(path, method=method, headers={"Authorization": f"Bearer {TOKEN}"}, **kw)
    assert ok.status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json"])
def test_operations_endpoints_need_no_token(secured, path):
    assert secured.get(path).status_code == 200


def test_openapi_says_when_the_token_is_required(secured, client):
    assert secured.get("/openapi.json").get_json()["paths"]["/predict"]["post"]["security"] == [{"bearerAuth": []}]
    assert client.get("/openapi.json").get_json()["paths"]["/predict"]["post"]["security"] == []


# ------------------------------------------------------------------ errors, config
def test_method_not_allowed_and_unknown_route_are_json(client, api_error):
    response = client.delete("/v1/models")
    api_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]
    api_error(client.get("/v1/nothing/here"), 404, "not_found")


def test_a_bug_is_a_logged_json_500_and_the_app_keeps_serving(app, client, api_error, caplog, digit_png):
    def boom():
        raise RuntimeError("a bug")

    app.add_url_rule("/boom", "boom", boom)
    with caplog.at_level(logging.ERROR, logger="service"):
        message = api_error(client.get("/boom"), 500, "internal_error")
    assert "a bug" not in message and "RuntimeError: a bug" in caplog.text and "Traceback" in caplog.text
    assert _post_png(client, digit_png[0]).status_code == 200


def test_config_from_the_environment_and_the_dict(models_source, make_app, monkeypatch, digit_png):
    from service.app import Settings

    monkeypatch.setenv("CVPIPE_MAX_IMAGES", "2")
    monkeypatch.setenv("CVPIPE_MAX_BYTES", "12345")
    settings = Settings.read({"CVPIPE_MAX_BYTES": 999})
    assert (settings.max_images, settings.max_bytes, settings.max_pixels) == (2, 999, 40_000_000)
    app = make_app(models_source)
    assert app.config["MAX_CONTENT_LENGTH"] == 12345
    files = [(io.BytesIO(digit_png[0]), f"{i}.png") for i in range(3)]
    assert app.test_client().post("/predict", data={"image": files}).status_code == 413


@pytest.mark.parametrize("key, value", [("CVPIPE_MAX_BYTES", "ten"), ("CVPIPE_MAX_PIXELS", 0),
                                        ("CVPIPE_MAX_IMAGES", -1), ("CVPIPE_RELOAD_INTERVAL", "soon")])
def test_bad_config_fails_at_start(models_source, make_app, key, value):
    with pytest.raises(ValueError, match=f"{key}: expected a positive"):
        make_app(models_source, **{key: value})


def test_error_bodies_are_json_documents(client):
    text = _post_png(client, b"").get_data(as_text=True)
    assert json.loads(text)["error"]["code"] == "empty_body"


def test_the_kserve_v1_path_answers_as_the_named_model_path(client, digit_png):
    """`POST /v1/models/NAME:predict` (KServe v1, TensorFlow Serving) with their
    `{"instances": [{"b64": ...}]}` body: the answer of `/v1/models/NAME/predict`."""
    import base64

    body = {"instances": [{"b64": base64.b64encode(digit_png[0]).decode()}]}
    colon = client.post("/v1/models/default:predict", json=body)
    slash = client.post("/v1/models/default/predict", json=body)
    assert colon.status_code == slash.status_code == 200
    strip = lambda answer: {k: v for k, v in answer.items() if k != "took_ms"}  # noqa: E731
    assert strip(colon.get_json()) == strip(slash.get_json())
    assert colon.get_json()["predictions"][0]["class_index"] == digit_png[1]
    assert client.post("/v1/models/nosuch:predict", json=body).status_code == 404


def test_the_reload_path_is_post_only_and_its_options_say_so(client):
    """/v1/models/<name> no longer takes 'reload' as a name: OPTIONS advertised GET there."""
    response = client.options("/v1/models/reload")
    assert set(response.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
    assert client.get("/v1/models/reload").status_code == 405
    assert client.get("/v1/models/default").status_code == 200


def test_the_documented_image_field_needs_one_image_at_least(client):
    doc = client.get("/openapi.json").get_json()
    schemas = doc["paths"]["/predict"]["post"]["requestBody"]["content"]
    form = schemas["multipart/form-data"]["schema"]["properties"]["image"]
    assert form["minItems"] == 1
