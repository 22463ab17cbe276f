"""The smoke subset: every module imports, one pipeline fits, predicts, saves and loads,
and gunicorn serves it one request. CI runs it against the declared minimum versions of
the runtime dependencies (``.ci/min-versions``) as well as with everything else."""
from __future__ import annotations

import importlib
import io
import json
import pkgutil
import sys
import urllib.request
import uuid

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.smoke

PACKAGES = ("compute", "features", "classifiers", "pipeline", "service", "cvpipe")
#: Modules that need an optional extra: the extra's package, by module.
OPTIONAL = {"cvpipe.reports": "matplotlib"}


def _modules():
    for name in PACKAGES:
        package = importlib.import_module(name)
        yield name
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            if info.name != "cvpipe.__main__":  # runs the command line when imported
                yield info.name


@pytest.mark.parametrize("name", sorted(_modules()))
def test_every_module_imports(name):
    if name in OPTIONAL:
        pytest.importorskip(OPTIONAL[name], reason=f"{name} needs {OPTIONAL[name]}, an optional extra")
    importlib.import_module(name)


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    from pipeline.data import load_dataset
    from pipeline.model import ImagePipeline, load, save

    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    model = ImagePipeline("hog:pixels_per_cell=4x4,raw", "softmax:random_state=0")
    model.fit(train.images, train.labels, class_names=train.class_names)
    folder = tmp_path_factory.mktemp("models")
    save(model, folder / "default")
    return model, load(folder / "default"), folder, test


def test_a_pipeline_fits_predicts_saves_and_loads(digits_model):
    model, loaded, _, test = digits_model
    assert (model.predict(test.images) == test.labels).mean() > 0.9
    np.testing.assert_array_equal(loaded.predict_proba(test.images), model.predict_proba(test.images))


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="gunicorn: Linux only here")
def test_gunicorn_serves_one_request(digits_model):
    from service.testing import start, stop

    _, _, folder, test = digits_model
    buf = io.BytesIO()
    Image.fromarray(test.images[0]).save(buf, format="PNG")
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="d.png"\r\n'
            f"Content-Type: image/png\r\n\r\n").encode() + buf.getvalue() + f"\r\n--{boundary}--\r\n".encode()
    server = start(folder, workers=1)
    try:
        request = urllib.request.Request(f"{server.base_url}/predict", data=body, method="POST",
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
    finally:
        stop(server)
    assert answer["model"] == "default" and answer["predictions"][0]["label"] in test.class_names
