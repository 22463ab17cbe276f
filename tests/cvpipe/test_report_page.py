"""``cvpipe report``: the classification report, the gallery of confident mistakes, the
reliability diagram and ``index.html`` -- on a model and an image folder whose names hold
HTML (``<``, ``&``, quotes) and matplotlib's math sign ``$``; then the page in a real
browser (Playwright driving Debian's Chromium, as tests/service/test_page.py does).
"""
from __future__ import annotations

import html
import json
import os
import re

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import classification_report

from cvpipe import report_page
from cvpipe.commands import report
from pipeline.data import load_dataset
from pipeline.model import ImagePipeline, read_model, save
from tests.conftest import require

# Sorted as the folder reader sorts class folders, so that folder label i is class i.
NAMES = ["<i>zero", "a$b$c & one", "z'\"eight<td>"]  # no '/': a class is a folder
DIGITS = (0, 1, 8)
N_WRONG = 5  # test images of another class filed in the first class's folder: confident mistakes
CHROMIUM = os.environ.get("CVPIPE_CHROMIUM", "/usr/bin/chromium")


def _three_digits(split):
    data = load_dataset("digits", split)
    keep = np.isin(data.labels, DIGITS)
    return data.images[keep], np.searchsorted(DIGITS, data.labels[keep])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    images, labels = _three_digits("train")
    # tol=1e-2: converged in a second (the default tol takes seconds more on this shared test run)
    model = ImagePipeline("raw", "softmax:tol=1e-2").fit(images, labels, class_names=NAMES)
    model.metrics_ = {"note": "<b>not bold</b>"}
    return save(model, tmp_path_factory.mktemp("models") / "m<&>'")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The test split of the three digits as PNG files in ``data <&>/test/<class name>/``."""
    root = tmp_path_factory.mktemp("images") / "data <&>"
    images, labels = _three_digits("test")
    wrong = np.flatnonzero(labels != 0)[:N_WRONG]
    labels = labels.copy()
    labels[wrong] = 0
    for i, (image, label) in enumerate(zip(images, labels)):
        where = root / "test" / NAMES[label]
        where.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(where / f"img<{i:03d}>.png")
    return root


@pytest.fixture(scope="module")
def written(model_dir, folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out <&>"
    return report(model_dir, out, dataset=str(folder), split="test"), out


def test_report_writes_the_classification_report_plots_and_page(written, model_dir, folder):
    summary, out = written
    names = sorted(p.rsplit("/", 1)[1] for p in summary["plots"])
    assert names == ["class_templates.png", "confusion_matrix.png", "loss_history.png", "misclassified.png",
                     "reliability.png"]
    for path in summary["plots"]:
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size[0] >= 600 and im.size[1] >= 230
    text = (out / "classification_report.txt").read_text()
    table = json.loads((out / "classification_report.json").read_text())
    assert all(name in text for name in NAMES) and set(NAMES) <= set(table)
    # the same numbers scikit-learn gives for the model's own predictions of the folder
    model = read_model(model_dir)[0]
    images = np.stack([np.asarray(Image.open(p)) for p in sorted(folder.glob("test/*/*.png"))])
    truth = [NAMES.index(p.parent.name) for p in sorted(folder.glob("test/*/*.png"))]
    expected = classification_report(truth, model.predict(images), target_names=NAMES, output_dict=True,
                                     zero_division=0)
    assert table["accuracy"] == pytest.approx(expected["accuracy"]) == pytest.approx(summary["accuracy"])
    assert table[NAMES[0]] == pytest.approx(expected[NAMES[0]])
    assert 0 <= summary["expected_calibration_error"] <= 1
    assert summary["index"] == str(out / "index.html")


def test_the_page_escapes_every_name_and_links_only_inside_the_folder(written):
    summary, out = written
    page = (out / "index.html").read_text()
    for raw in ("<i>", "<b>", "eight<td>", "m<&>"):
        assert raw not in page
    for name in (*NAMES, "<b>not bold</b>", "m<&>'"):
        assert html.escape(name, quote=True) in page
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(srcs) == sorted(p.rsplit("/", 1)[1] for p in summary["plots"])
    links = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert links and all(not re.match(r"[a-z]+:|//|/", link) for link in links if not link.startswith("#"))
    assert "http" not in page.lower().replace("http-equiv", "")
    # the gallery's table names the mistakes by file, true and predicted class, most confident first
    rows = re.findall(r'<tr><td class="num">\d+</td><td><code>([^<]*)</code></td><td>([^<]*)</td>'
                      r'<td>([^<]*)</td><td class="num">([0-9.]+)</td></tr>', page)
    assert len(rows) >= N_WRONG and all(true != pred for _, true, pred, _ in rows)
    scores = [float(s) for *_, s in rows]
    assert scores == sorted(scores, reverse=True)
    assert html.escape("img<", quote=True) in rows[0][0] and html.escape(NAMES[0], quote=True) in {r[1] for r in rows}


def test_a_manifest_without_provenance_or_metrics_still_has_a_page(model_dir, tmp_path):
    _, manifest, sha = read_model(model_dir)
    manifest.pop("provenance", None)
    manifest["metrics"] = {}
    page = report_page.write_index(tmp_path, manifest, [], name=None, sha256=sha).read_text()
    assert "not recorded" in page and "no plot applies" in page and sha[:12] in page


def test_a_classifier_without_probabilities_gets_no_reliability_diagram(tmp_path, folder):
    images, labels = _three_digits("train")
    model_path = save(ImagePipeline("raw", "svm:tol=1e-2").fit(images, labels, class_names=NAMES), tmp_path / "svm")
    summary = report(model_path, tmp_path / "rep", dataset=str(folder), split="test")
    names = sorted(p.rsplit("/", 1)[1] for p in summary["plots"])
    assert "reliability.png" not in names and "misclassified.png" in names
    assert summary["expected_calibration_error"] is None
    assert "decision scores, not probabilities" in (tmp_path / "rep" / "index.html").read_text()


@pytest.mark.slow  # a browser
def test_the_page_in_chromium_loads_every_image_from_the_folder_alone(written, tmp_path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "Playwright is not installed (pip install playwright)")
    require(os.path.exists(CHROMIUM), f"no Chromium at {CHROMIUM} (apt-get install chromium, or set $CVPIPE_CHROMIUM)")
    summary, out = written
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            requests, errors = [], []
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto((out / "index.html").as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.getAttribute('src'), e.complete, e.naturalWidth])")
            title = page.title()
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        finally:
            browser.close()
    assert len(images) == len(summary["plots"]) and all(done and width > 0 for _, done, width in images), images
    assert requests and all(url.startswith("file://") for url in requests), requests
    assert not errors and title == "Model report: m<&>'"
    with Image.open(tmp_path / "page.png") as shot:
        assert shot.width >= 1000 and shot.height > 3000  # the card, the tables and five plots, laid out
