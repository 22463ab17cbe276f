"""The package as the Dockerfile builds it (a wheel of the files its COPY lines take, not
this checkout), served by gunicorn the way the image serves it: its own config file, the
upload page's files from the package, and numba with nowhere to cache its kernels."""
from __future__ import annotations

import http.client
import io
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from pipeline.data.datasets import load_dataset
from pipeline.model import ImagePipeline, save
from service.testing import free_port, stop, wait_until_ready

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform != "linux", reason="gunicorn: Linux only")]
ROOT = Path(__file__).resolve().parents[2]


def dockerfile_sources():
    """What the Dockerfile copies into /src before ``pip install``: the paths of its COPY lines."""
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    install = next(i for i, line in enumerate(lines) if re.match(r"RUN pip install", line))
    sources = [src for line in lines[:install] if line.startswith("COPY ") for src in line.split()[1:-1]]
    assert sources, "no COPY line before `RUN pip install` in the Dockerfile"
    return sources


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A wheel built from what the Dockerfile copies, unpacked: what its ``pip install`` puts in site-packages."""
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    for name in dockerfile_sources():
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--quiet", "-w", str(out)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = out.glob("cvpipe-*.whl")
    site = out / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def test_the_installed_package_serves_under_gunicorn(installed, tmp_path):
    digits = load_dataset("digits", "test")
    model = ImagePipeline("hog:pixels_per_cell=4x4", "softmax:random_state=0")
    save(model.fit(digits.images, digits.labels, class_names=digits.class_names), tmp_path / "models" / "default")
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "PYTHONPATH": str(installed),
           "CVPIPE_MODELS": str(tmp_path / "models"), "CVPIPE_BIND": f"127.0.0.1:{port}",
           # numba with no place to keep compiled kernels (a read-only install, no writable home or
           # cache folder): the kernels must compile in memory instead of failing to import. The
           # IPython locator takes only functions defined in IPython, so none is found.
           "NUMBA_CACHE_LOCATOR_CLASSES": "numba.core.caching.IPythonCacheLocator"}
    packages = "compute, features, classifiers, pipeline, service, cvpipe"
    where = subprocess.run([sys.executable, "-c", f"import {packages}; "
                            f"print('\\n'.join(m.__file__ for m in ({packages})))"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr[-2000:]
    assert all(Path(f).is_relative_to(installed) for f in where.stdout.split()), where.stdout  # not this checkout
    log = open(tmp_path / "gunicorn.log", "w+")
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config",
                               str(installed / "service" / "gunicorn_conf.py"), "service.wsgi:app"],
                              cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", 120, proc=server)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        png = io.BytesIO()
        Image.fromarray(digits.images[0]).save(png, format="PNG")
        conn.request("POST", "/predict", body=png.getvalue(), headers={"Content-Type": "image/png"})
        response = conn.getresponse()
        assert response.status == 200 and b'"predictions"' in response.read()
        for path in ("/", "/ui/static/app.js", "/ui/static/style.css", "/openapi.json"):  # package data
            conn.request("GET", path)
            response = conn.getresponse()
            assert (path, response.status) == (path, 200) and response.read()
        conn.close()
    finally:
        stop(server)
        log.seek(0)
        text = log.read()
        log.close()
    assert "ERROR" not in text, text[-3000:]
    import numba.core.config

    if hasattr(numba.core.config, "CACHE_LOCATOR_CLASSES"):  # the numba versions that read the variable
        assert "hog_gray_uint8 compiles in memory" in text and "[WARNING]" in text, text[-3000:]
        assert f"{installed}/features/_hog_cpu.py" in text  # the wheel's code ran, not this checkout's
