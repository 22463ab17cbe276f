"""The upload page in a real browser (Playwright driving Debian's Chromium) against the real
app on a real server (werkzeug, in a thread, on 127.0.0.1).

Without Playwright or Chromium these tests skip on a developer's machine and fail under
``CI=true`` (``.ci/run`` installs Chromium; the ``dev`` extra brings Playwright).
"""
from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request

import pytest
from PIL import Image

from pipeline.data.datasets import load_dataset
from service import create_app
from tests.conftest import require

CHROMIUM = os.environ.get("CVPIPE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TOKEN = "page-test-token"
WAIT_MS = 30_000  # a shared, loaded machine: generous, but bounded

pytestmark = pytest.mark.slow  # a browser


# ------------------------------------------------------------------ fixtures
def _serve(app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture(scope="module")
def base_url(models_source):
    server, thread = _serve(create_app({"CVPIPE_MODELS": str(models_source), "CVPIPE_API_TOKEN": ""}))
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


@pytest.fixture(scope="module")
def token_url(models_source):
    server, thread = _serve(create_app({"CVPIPE_MODELS": str(models_source), "CVPIPE_API_TOKEN": TOKEN}))
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "Playwright is not installed (pip install playwright)")
    require(os.path.exists(CHROMIUM), f"no Chromium at {CHROMIUM} (apt-get install chromium, or set $CVPIPE_CHROMIUM)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    yield page
    context.close()
    assert not page.errors, f"JavaScript errors on the page: {page.errors}"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A digit as a 64x64 PNG and a text file."""
    folder = tmp_path_factory.mktemp("uploads")
    test = load_dataset("digits", "test")
    Image.fromarray(test.images[3]).resize((64, 64), Image.NEAREST).save(folder / "digit.png")
    (folder / "notes.txt").write_text("this is not an image\n")
    return folder


def _api(url, path, file=None, token=None):
    """The API's own answer for ``file`` (multipart, as the page sends it): (status, JSON)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = None
    if file is not None:
        boundary = "pagetest"
        ctype = "image/png" if file.suffix == ".png" else "text/plain"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{file.name}\"\r\n"
                f"Content-Type: {ctype}\r\n\r\n").encode() + file.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    request = urllib.request.Request(url + path, data=body, headers=headers, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# ------------------------------------------------------------------ tests
def test_upload_an_image_and_see_the_top_classes(page, base_url, files):
    from playwright.sync_api import expect

    status, answer = _api(base_url, "/predict?top_k=5", files / "digit.png")
    assert status == 200
    expected = answer["predictions"][0]

    page.goto(base_url + "/")
    expect(page.get_by_role("heading", name="Classify an image")).to_be_visible()
    model = page.get_by_label("Model", exact=True)
    expect(model).to_have_value("default")
    expect(page.locator("#model-info")).to_contain_text("10 classes")
    expect(page.locator("#model-problems summary")).to_contain_text("broken")  # the corrupt model, named

    page.get_by_label("Drop an image here").set_input_files(files / "digit.png")
    card = page.locator(".card").first
    expect(card.locator(".label")).to_have_text(expected["label"])
    expect(card.locator(".bar-row")).to_have_count(5)
    expect(card.locator(".bar-row").first).to_contain_text(expected["label"])
    expect(card.locator(".meta")).to_contain_text("model default")
    expect(card.locator("img")).to_have_attribute("alt", "Preview of digit.png")
    assert card.locator(".bar-fill").first.evaluate("e => e.style.width").endswith("%")
    expect(page.locator("#error")).to_be_hidden()


def test_upload_a_non_image_and_read_the_error(page, base_url, files):
    from playwright.sync_api import expect

    status, answer = _api(base_url, "/predict", files / "notes.txt")
    assert status == 400
    message = answer["error"]["message"]

    page.goto(base_url + "/")
    expect(page.get_by_label("Model", exact=True)).to_have_value("default")
    page.locator("#file").set_input_files(files / "notes.txt")
    card = page.locator(".card").first
    expect(card.locator(".card-error")).to_have_text(message)
    expect(card.locator(".label")).to_have_text("No prediction")
    expect(card.locator(".no-preview")).to_be_visible()
    expect(page.locator("#status")).to_have_text("The image could not be classified.")


def test_a_server_with_a_token(page, token_url, files):
    """Without the token the page says so in words; with it (kept for the tab) predictions work."""
    from playwright.sync_api import expect

    page.goto(token_url + "/")
    expect(page.locator("#error")).to_contain_text("bearer token")
    token = page.get_by_label("Bearer token")
    expect(token).to_be_focused()
    token.fill(TOKEN)
    token.press("Enter")
    expect(page.get_by_label("Model", exact=True)).to_have_value("default")
    expect(page.locator("#error")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('cvpipe.apiToken')") == TOKEN

    page.reload()  # same tab: the token is still there
    expect(page.get_by_label("Bearer token")).to_have_value(TOKEN)
    page.locator("#file").set_input_files(files / "digit.png")
    expect(page.locator(".card .bar-row")).to_have_count(5)
    assert _api(token_url, "/v1/models")[0] == 401  # and the API really wanted it


def test_readable_on_a_phone(browser, base_url, files):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True)
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(base_url + "/")
        page.locator("#file").set_input_files(files / "digit.png")
        expect(page.locator(".card .bar-row")).to_have_count(5)
        page.locator("#model-problems summary").click()  # the long load error, opened
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"the page scrolls sideways on a phone: {width}"
        size = page.locator(".label").first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
        assert size >= 16
    finally:
        context.close()


def test_page_is_self_contained(base_url):
    """One origin only: a strict Content-Security-Policy, no external URLs in the page."""
    with urllib.request.urlopen(base_url + "/", timeout=30) as response:
        html = response.read().decode()
        csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "http://" not in html and "https://" not in html
    for asset in ("app.js", "style.css"):
        with urllib.request.urlopen(f"{base_url}/ui/static/{asset}", timeout=30) as response:
            text = response.read().decode()
        assert response.status == 200 and "http://" not in text and "https://" not in text


# ------------------------------------------------------------------ /docs
def test_docs_shows_every_path_of_the_openapi_document_from_this_origin_alone(page, base_url):
    """Swagger UI (5.x, from the swagger-ui-py package) renders /openapi.json in Chromium; no
    request leaves the origin (no CDN, no validator), no JavaScript error."""
    requested = []
    page.on("request", lambda r: requested.append(r.url))
    response = page.goto(f"{base_url}/docs")
    assert response.status == 200 and "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector(".swagger-ui .opblock-summary-path")
    shown = set(page.locator(".swagger-ui .opblock-summary-path").all_inner_texts())
    with urllib.request.urlopen(f"{base_url}/openapi.json") as answer:
        documented = set(json.load(answer)["paths"])
    clean = {p.replace("\u200b", "") for p in shown}  # Swagger UI breaks long paths with zero-width spaces
    assert documented <= clean, sorted(documented - clean)
    assert page.locator(".swagger-ui .errors-wrapper").count() == 0
    assert requested and all(url.startswith(base_url) for url in requested), \
        [url for url in requested if not url.startswith(base_url)]
