"""The Open Inference Protocol v2, driven by Triton's own HTTP client (PyPI tritonclient[http]),
which nobody here wrote: its answers equal /predict's."""
from __future__ import annotations

import base64
import io
import threading

import numpy as np
import pytest

th = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

TOKEN = "oip-token"


def _serve(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def served(models_source):
    from service import create_app

    server = _serve(create_app({"CVPIPE_MODELS": str(models_source)}))
    try:
        yield th.InferenceServerClient(f"127.0.0.1:{server.server_port}"), create_app(
            {"CVPIPE_MODELS": str(models_source), "TESTING": True}).test_client()
    finally:
        server.shutdown()


def _images(n=3):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (8, 8), dtype=np.uint8) for _ in range(n)]


def _predict(client, encoded):
    files = {"image": [(io.BytesIO(b), f"{i}.png") for i, b in enumerate(encoded)]}
    answer = client.post("/predict?top_k=1", data=files, content_type="multipart/form-data").get_json()
    return [p["label"] for p in answer["predictions"]], [p["score"] for p in answer["predictions"]]


def test_health_and_metadata(served):
    client, _ = served
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("default")
    assert not client.is_model_ready("broken")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    meta = client.get_model_metadata("default")
    assert [i["name"] for i in meta["inputs"]] == ["image", "pixels"] and meta["inputs"][1]["shape"] == [-1, 8, 8]
    assert meta["outputs"] == [{"name": "scores", "datatype": "FP32", "shape": [-1, 10]},
                               {"name": "label", "datatype": "BYTES", "shape": [-1]}]
    version = meta["versions"][0]
    assert client.get_model_metadata("default", model_version=version)["name"] == "default"
    with pytest.raises(InferenceServerException, match="serves version"):
        client.get_model_metadata("default", model_version="0" * 12)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_encoded_images_answer_as_predict(served, encode, binary):
    client, flask_client = served
    encoded = [encode(image) for image in _images()]
    tensor = th.InferInput("image", [len(encoded)], "BYTES")
    values = encoded if binary else [base64.b64encode(b) for b in encoded]
    tensor.set_data_from_numpy(np.array(values, dtype=np.object_), binary_data=binary)
    outputs = None if binary else [th.InferRequestedOutput("scores", binary_data=False),
                                   th.InferRequestedOutput("label", binary_data=False)]
    result = client.infer("default", [tensor], outputs=outputs)
    scores, labels = result.as_numpy("scores"), [str(x, "utf-8") if isinstance(x, bytes) else x
                                                 for x in result.as_numpy("label")]
    expected_labels, expected_scores = _predict(flask_client, encoded)
    assert labels == expected_labels and scores.shape == (3, 10) and scores.dtype == np.float32
    np.testing.assert_allclose(scores.max(axis=1), expected_scores, rtol=1e-6)
    assert result.get_response()["model_version"] == client.get_model_metadata("default")["versions"][0]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_pixel_tensors_answer_as_the_same_pixels_sent_as_png(served, encode, binary):
    client, flask_client = served
    images = _images(4)
    tensor = th.InferInput("pixels", [4, 8, 8], "UINT8")
    tensor.set_data_from_numpy(np.stack(images), binary_data=binary)
    result = client.infer("default", [tensor])
    labels = [x.decode() for x in result.as_numpy("label")]
    assert labels == _predict(flask_client, [encode(image) for image in images])[0]


@pytest.mark.parametrize("name, shape, dtype, data, match", [
    ("image", [1], "BYTES", [b"not an image"], "expected a raster image"),
    ("pixels", [1, 8], "UINT8", np.zeros((1, 8), np.uint8), "expected shape"),
    ("other", [1], "BYTES", [b"x"], "expected the input 'image' \\(BYTES\\) or 'pixels'"),
    ("pixels", [1, 8, 8], "INT32", np.zeros((1, 8, 8), np.int32), "expected the input"),
])
def test_bad_tensors_are_protocol_errors(served, name, shape, dtype, data, match):
    client, _ = served
    tensor = th.InferInput(name, shape, dtype)
    tensor.set_data_from_numpy(np.array(data, dtype=np.object_) if dtype == "BYTES" else data)
    with pytest.raises(InferenceServerException, match=match) as info:
        client.infer("default", [tensor])
    assert info.value.status() == "400"


def test_unknown_models_and_broken_ones(served):
    client, _ = served
    tensor = th.InferInput("pixels", [1, 8, 8], "UINT8")
    tensor.set_data_from_numpy(np.zeros((1, 8, 8), np.uint8))
    with pytest.raises(InferenceServerException, match="no model named 'nosuch'") as info:
        client.infer("nosuch", [tensor])
    assert info.value.status() == "404"
    with pytest.raises(InferenceServerException, match="failed to load") as info:
        client.infer("broken", [tensor])
    assert info.value.status() == "503"


def test_the_token_guards_inference_but_not_the_probes(models_source):
    from service import create_app

    server = _serve(create_app({"CVPIPE_MODELS": str(models_source), "CVPIPE_API_TOKEN": TOKEN}))
    try:
        client = th.InferenceServerClient(f"127.0.0.1:{server.server_port}")
        assert client.is_server_live() and client.is_server_ready()
        tensor = th.InferInput("pixels", [1, 8, 8], "UINT8")
        tensor.set_data_from_numpy(np.zeros((1, 8, 8), np.uint8))
        with pytest.raises(InferenceServerException) as info:
            client.infer("default", [tensor])
        assert info.value.status() == "401"
        answer = client.infer("default", [tensor], headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.as_numpy("scores").shape == (1, 10)
    finally:
        server.shutdown()
