"""ModelRegistry: loading a folder, reporting failures, cheap change detection, safe swaps."""
from __future__ import annotations

import os
import shutil
import threading
import time

import numpy as np
import pytest

from service.registry import ModelRegistry


@pytest.fixture
def registry(models_dir):
    reg = ModelRegistry(models_dir)
    reg.reload()
    return reg


@pytest.fixture
def count_loads(monkeypatch):
    """The names of the folders :func:`pipeline.model.artifacts.read_model` was called on."""
    import service.registry

    calls = []
    real = service.registry.read_model

    def counting(path):
        calls.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(service.registry, "read_model", counting)
    return calls


def _resave(models_dir, name, n_epochs):
    """Replace model ``name`` by a different one (a new version), atomically."""
    from pipeline.model import ImagePipeline, save

    rng = np.random.default_rng(n_epochs)
    X = rng.integers(0, 256, size=(20, 8, 8), dtype=np.uint8)
    save(ImagePipeline("raw", f"softmax:n_epochs={n_epochs}").fit(X, np.arange(20) % 2), models_dir / name)


def test_loads_every_model_folder_and_reports_the_broken_one(registry, models_dir):
    assert [e.name for e in registry.entries()] == ["broken", "default", "rgb"]
    broken, default = registry.get("broken"), registry.get("default")
    assert default.status == "ready" and default.model.input_shape_ == (8, 8)
    assert broken.status == "error" and broken.model is None
    assert "arrays.npz: sha256" in broken.error and str(models_dir) not in broken.error
    assert registry.ready() and registry.default_name() == "default"


def _edit_manifest(folder, edit):
    import json

    doc = json.loads((folder / "manifest.json").read_text())
    edit(doc)
    (folder / "manifest.json").write_text(json.dumps(doc))


DAMAGE = {
    "manifest not JSON": (lambda f: (f / "manifest.json").write_text("{not json"), "not valid JSON"),
    "foreign manifest": (lambda f: _edit_manifest(f, lambda d: d.update(format="other")), "not a cvpipe model"),
    "class not allowed": (lambda f: _edit_manifest(f, lambda d: d["steps"][1].update({"class": "os.system"})),
                          "allow-list"),
    "arrays missing": (lambda f: (f / "arrays.npz").unlink(), "arrays.npz: missing"),
    "arrays truncated": (lambda f: (f / "arrays.npz").write_bytes((f / "arrays.npz").read_bytes()[:100]),
                         "truncated"),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_model_is_reported_and_the_others_serve(models_dir, damage):
    shutil.copytree(models_dir / "default", models_dir / "damaged")
    do, expected = DAMAGE[damage]
    do(models_dir / "damaged")
    reg = ModelRegistry(models_dir)
    assert reg.reload()["failed"] == ["broken", "damaged"]
    assert reg.get("damaged").status == "error" and expected in reg.get("damaged").error
    assert reg.get("default").status == "ready" and reg.get("rgb").status == "ready"


def test_an_unexpected_error_while_loading_is_reported(models_dir, monkeypatch, caplog):
    import service.registry

    real = service.registry.read_model
    monkeypatch.setattr(service.registry, "read_model",
                        lambda p: (_ for _ in ()).throw(RuntimeError("boom")) if p.name == "rgb" else real(p))
    reg = ModelRegistry(models_dir)
    with caplog.at_level("ERROR", logger="service"):
        reg.reload()
    assert reg.get("rgb").error == "RuntimeError: boom" and reg.get("default").status == "ready"
    assert "Traceback" in caplog.text


def test_logs_the_failure(models_dir, caplog):
    with caplog.at_level("ERROR", logger="service"):
        ModelRegistry(models_dir).reload()
    assert "model broken: failed to load" in caplog.text


def test_ignores_hidden_folders_and_folders_without_a_manifest(models_dir):
    shutil.copytree(models_dir / "default", models_dir / ".default.tmp")
    (models_dir / "notes").mkdir()
    (models_dir / "README.md").write_text("models")
    reg = ModelRegistry(models_dir)
    reg.reload()
    assert [e.name for e in reg.entries()] == ["broken", "default", "rgb"]


def test_names_are_looked_up_never_joined(registry):
    for name in ["../default", "default/../default", "/etc", "", None, 3]:
        assert registry.get(name) is None


def test_missing_folder_is_no_models(tmp_path):
    reg = ModelRegistry(tmp_path / "absent")
    assert reg.reload()["added"] == [] and reg.default_name() is None and not reg.ready()


def test_configured_default(models_dir):
    reg = ModelRegistry(models_dir, default="rgb")
    reg.reload()
    assert reg.default_name() == "rgb" and reg.ready()


def test_reload_without_changes_loads_nothing(registry, count_loads, models_dir):
    assert registry.reload() == {"added": [], "updated": [], "removed": [], "failed": ["broken"],
                                 "unchanged": ["default", "rgb"]}
    os.utime(models_dir / "default" / "manifest.json")  # touched: same bytes
    before = registry.get("default")
    assert "default" in registry.reload()["unchanged"]
    assert count_loads == [] and registry.get("default").model is before.model


def test_reload_adds_updates_and_removes(registry, models_dir, count_loads):
    old = registry.get("default")
    shutil.copytree(models_dir / "rgb", models_dir / "rgb2")
    _resave(models_dir, "default", n_epochs=2)
    shutil.rmtree(models_dir / "rgb")
    changes = registry.reload()
    assert (changes["added"], changes["updated"], changes["removed"]) == (["rgb2"], ["default"], ["rgb"])
    assert sorted(count_loads) == ["default", "rgb2"]
    new = registry.get("default")
    assert new.version != old.version and len(new.model.classes_) == 2 and registry.get("rgb") is None


def test_a_failed_update_keeps_the_last_good_version(registry, models_dir, count_loads):
    good = registry.get("default")
    _resave(models_dir, "default", n_epochs=2)  # a new version ...
    arrays = models_dir / "default" / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:-10])  # ... that arrived truncated
    assert registry.reload()["failed"] == ["broken", "default"]
    entry = registry.get("default")
    assert entry.status == "ready" and entry.model is good.model and entry.version == good.version
    assert entry.error.startswith(f"reload failed, serving version {good.version}")
    registry.reload()
    assert count_loads == ["default"]  # the same broken files are not tried again
    _resave(models_dir, "default", n_epochs=3)  # fixed
    assert registry.reload()["updated"] == ["default"] and registry.get("default").error is None


def test_arrays_changed_under_an_unchanged_manifest_are_not_a_new_version(registry, models_dir, count_loads):
    """The manifest pins arrays.npz by sha256: new arrays alone are damage, not a version."""
    arrays = models_dir / "default" / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:-10])
    assert "default" in registry.reload()["unchanged"] and count_loads == []
    assert registry.get("default").status == "ready"


def test_a_repaired_model_loads(registry, models_dir, models_source):
    shutil.copy(models_source / "default" / "arrays.npz", models_dir / "broken" / "arrays.npz")
    assert registry.reload()["added"] == ["broken"]  # first time it serves
    assert registry.get("broken").status == "ready"


def test_requests_see_a_whole_set_during_reloads(registry, models_dir):
    """Readers never see a missing or half-loaded model while the folder changes and reloads."""
    errors, stop = [], threading.Event()
    images = np.zeros((2, 8, 8), np.uint8)

    def read():
        while not stop.is_set():
            try:
                entry = registry.get("default")
                assert entry is not None and entry.status == "ready"
                assert entry.model.predict(images).shape == (2,)
            except Exception as exc:  # collected, reported by the main thread
                errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        for n in range(2, 5):
            _resave(models_dir, "default", n_epochs=n)
            assert registry.reload()["updated"] == ["default"]
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert errors == []


def test_maybe_reload_runs_in_the_background_after_the_interval(registry, models_dir):
    shutil.copytree(models_dir / "rgb", models_dir / "later")
    assert not registry.maybe_reload(0) and not registry.maybe_reload(3600)
    registry._checked -= 10
    assert registry.maybe_reload(5)
    deadline = time.monotonic() + 10
    while registry.get("later") is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert registry.get("later").status == "ready"
    assert not registry.maybe_reload(5)  # just checked


def test_app_reloads_on_requests_with_an_interval(models_dir, make_app):
    app = make_app(models_dir, CVPIPE_RELOAD_INTERVAL=0.01)
    client = app.test_client()
    shutil.copytree(models_dir / "rgb", models_dir / "later")
    deadline = time.monotonic() + 10
    while client.get("/v1/models/later").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert client.get("/v1/models/later").get_json()["status"] == "ready"


def test_a_model_that_loads_but_cannot_predict_is_reported_while_the_others_serve(models_dir):
    """Every load ends with a prediction on one blank image: a manifest whose input size
    disagrees with the fitted extractor loads, but fails there, and is reported."""
    shutil.copytree(models_dir / "default", models_dir / "mismatched")
    _edit_manifest(models_dir / "mismatched", lambda doc: doc["input"].update(size=[9, 9]))
    registry = ModelRegistry(models_dir)
    registry.reload()
    mismatched = registry.get("mismatched")
    assert mismatched.status == "error" and mismatched.model is None
    assert "(8, 8)" in mismatched.error and "(9, 9)" in mismatched.error, mismatched.error
    assert registry.get("default").status == "ready"


@pytest.mark.parametrize("edit", ["class_is_a_list", "huge_integer"])
def test_a_tampered_manifest_fails_alone_and_the_others_serve(models_dir, edit):
    """A manifest that breaks the reader in an unusual way (a class that is a list, an
    integer of too many digits) is one failed model, never a service that does not start."""
    import json
    import shutil

    shutil.copytree(models_dir / "default", models_dir / "evil")
    file = models_dir / "evil" / "manifest.json"
    if edit == "class_is_a_list":
        manifest = json.loads(file.read_text())
        manifest["steps"][-1]["class"] = ["x"]
        file.write_text(json.dumps(manifest))
    else:
        file.write_text(file.read_text().replace('"format_version": 2', '"format_version": ' + "9" * 5000))
    registry = ModelRegistry(models_dir)
    changes = registry.reload()
    assert "evil" in changes["failed"] and registry.get("evil").status == "error"
    assert registry.get("default").status == "ready" and registry.ready()


# ------------------------------------------------------------- workers in step
def test_a_reload_in_one_worker_reaches_the_others_through_the_generation_file(models_dir, tmp_path, count_loads):
    shared = tmp_path / "run" / "models-generation"
    shared.parent.mkdir()
    first, second = (ModelRegistry(models_dir, generation_file=shared) for _ in range(2))
    first.reload(publish=False)  # each worker's start
    second.reload(publish=False)
    assert not first.follow() and not second.follow(), "a worker's start does not disturb the others"
    _resave(models_dir, "default", n_epochs=3)
    count_loads.clear()
    changes = first.reload()  # asked of one worker
    assert changes["updated"] == ["default"]
    assert second.get("default").version != first.get("default").version
    assert second.follow() and second.get("default").version == first.get("default").version
    assert count_loads == ["default", "default"], "each worker loaded only the changed model"
    assert not second.follow() and not first.follow(), "nothing more until the next reload"
    second.reload()  # without a change: the others look again, and find nothing to load
    count_loads.clear()
    assert first.follow() and count_loads == []


def test_a_background_check_that_finds_a_change_tells_the_others(models_dir, tmp_path):
    shared = tmp_path / "models-generation"
    first, second = (ModelRegistry(models_dir, generation_file=shared) for _ in range(2))
    first.reload(publish=False)
    second.reload(publish=False)
    first._checked -= 10
    assert first.maybe_reload(1)
    deadline = time.monotonic() + 30
    while first._lock.locked() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not second.follow(), "no change found: the others are not disturbed"
    _resave(models_dir, "default", n_epochs=4)
    first._checked -= 10
    assert first.maybe_reload(1)
    while first._lock.locked() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert second.follow() and second.get("default").version == first.get("default").version


def test_an_unwritable_generation_file_is_logged_and_the_reload_still_serves(models_dir, tmp_path, caplog):
    registry = ModelRegistry(models_dir, generation_file=tmp_path / "missing-folder" / "models-generation")
    assert registry.reload()["added"]
    assert "cannot tell the other workers to reload" in caplog.text
    assert registry.get("default").status == "ready"


def test_an_oversized_manifest_is_refused_before_it_is_read_or_hashed(models_dir, monkeypatch):
    import service.registry

    hashed = []
    real = service.registry.file_sha256
    monkeypatch.setattr(service.registry, "file_sha256", lambda p: hashed.append(p) or real(p))
    with open(models_dir / "default" / "manifest.json", "r+b") as fh:
        fh.truncate(2 * 2**30)  # a sparse 2 GiB manifest
    registry = ModelRegistry(models_dir)
    registry.reload()
    entry = registry.get("default")
    assert entry.status == "error" and "more than a manifest may hold" in entry.error and "not read" in entry.error
    assert not any("default" in str(p) for p in hashed)
    assert registry.get("rgb").status == "ready"


def test_cvpipe_device_overrides_the_device_models_were_saved_with(models_dir):
    registry = ModelRegistry(models_dir, device="cpu")
    registry.reload()
    for name in ("default", "rgb"):
        model = registry.get(name).model
        devices = [step.get_params()["device"] for step in (model.features_, model.classifier_)
                   if "device" in step.get_params(deep=False)]
        assert devices and set(devices) == {"cpu"}, (name, devices)
    saved = ModelRegistry(models_dir)
    saved.reload()
    assert saved.get("default").model.classifier_.get_params()["device"] == "auto"  # as saved


@pytest.mark.parametrize("value", ["GPU", "cuda", "auto", "1"])
def test_a_bad_cvpipe_device_is_refused_naming_what_is_expected(make_app, models_source, value):
    with pytest.raises(ValueError, match="CVPIPE_DEVICE: expected cpu or gpu"):
        make_app(models_source, CVPIPE_DEVICE=value)
