import json
import os
import pathlib
import shutil

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.naive_bayes import GaussianNB

from classifiers.knn import KNearestNeighbor
from classifiers.linear import LinearSVM, Softmax
from classifiers.net import TwoLayerNet
from features import HOG, BagOfVisualWords, ColorHistogram, FeatureStack
from pipeline import _io
from pipeline.model import artifacts
from pipeline.model.artifacts import ALLOWED_CLASSES, ArtifactError, load, read_manifest, save
from pipeline.model.image_pipeline import ImagePipeline

EXTRACTORS = {
    "raw": lambda: "raw:size=8",
    "color": lambda: ColorHistogram(bins=8),
    "hog": lambda: HOG(pixels_per_cell=(4, 4), cells_per_block=(2, 2)),
    "stack": lambda: FeatureStack([("hog", HOG(pixels_per_cell=(4, 4))), ("color", ColorHistogram(bins=6))]),
    "bovw_hard": lambda: BagOfVisualWords(n_words=8, patch_size=4, n_fit_descriptors=1500, random_state=0),
    "bovw_soft": lambda: BagOfVisualWords(n_words=8, patch_size=4, n_fit_descriptors=1500, assignment="soft",
                                          spatial_pyramid=True, random_state=1),
}
CLASSIFIERS = {
    "knn": lambda: "knn:n_neighbors=3,metric=l1,weights=distance",
    "svm": lambda: LinearSVM(n_epochs=3, random_state=0),
    "softmax": lambda: Softmax(n_epochs=3, learning_rate=1e-2, random_state=0),
    "net": lambda: TwoLayerNet(hidden_sizes=(16,), batchnorm=True, dropout=0.1, n_epochs=3, random_state=0),
}


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, color_data):
    """One fitted pipeline (stack + BoVW + net: every kind of state) saved once; tests copy it."""
    images, y = color_data
    features = FeatureStack([("bovw", EXTRACTORS["bovw_hard"]()), ("color", ColorHistogram(bins=6))])
    pipe = ImagePipeline(features, CLASSIFIERS["net"](), class_names=("red", "green", "blue")).fit(images, y)
    pipe.metrics_["test_accuracy"] = 0.5
    path = tmp_path_factory.mktemp("saved") / "model"
    save(pipe, path)
    return pipe, path


@pytest.fixture
def model(saved_model, tmp_path):
    """A fresh copy of the saved model folder, free to tamper with."""
    pipe, path = saved_model
    copy = tmp_path / "model"
    shutil.copytree(path, copy)
    return pipe, copy


def _assert_same_outputs(a, b, images):
    np.testing.assert_array_equal(a.predict(images), b.predict(images))
    for method in ("predict_proba", "decision_function"):
        assert hasattr(a, method) == hasattr(b, method)
        if hasattr(a, method):
            np.testing.assert_array_equal(getattr(a, method)(images), getattr(b, method)(images))


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("clf_name", sorted(CLASSIFIERS))
@pytest.mark.parametrize("feat_name", sorted(EXTRACTORS))
def test_round_trip_predicts_exactly_the_same(tmp_path, color_data, feat_name, clf_name):
    images, y = color_data
    pipe = ImagePipeline(EXTRACTORS[feat_name](), CLASSIFIERS[clf_name]()).fit(images[:36], y[:36])
    save(pipe, tmp_path / "m")
    loaded = load(tmp_path / "m")
    assert type(loaded.classifier_) is type(pipe.classifier_)
    assert repr(loaded) == repr(pipe)
    assert loaded.features_.get_params().keys() == pipe.features_.get_params().keys()
    _assert_same_outputs(pipe, loaded, images)
    assert (loaded.input_shape_, loaded.color_mode_) == ((16, 16), "RGB")
    assert loaded.class_names_ == ["0", "1", "2"]
    np.testing.assert_array_equal(loaded.classes_, pipe.classes_)


def test_round_trip_grayscale_digits_with_names_and_metrics(tmp_path):
    from pipeline.data.datasets import load_dataset

    data = load_dataset("digits")
    images, y = data.images[:200], data.labels[:200]
    pipe = ImagePipeline("hog:pixels_per_cell=4x4,cells_per_block=1x1,raw", "softmax:n_epochs=2,random_state=0")
    pipe.fit(images, y, class_names=data.class_names)
    pipe.metrics_.update({"test_accuracy": np.float64(0.75), "n_test": np.int64(12)})
    save(pipe, tmp_path / "digits")
    loaded = load(tmp_path / "digits")
    _assert_same_outputs(pipe, loaded, data.images[200:260])
    assert (loaded.input_shape_, loaded.color_mode_) == ((8, 8), "L")
    assert loaded.class_names_ == list(data.class_names)
    assert loaded.metrics_ == {"test_accuracy": 0.75, "n_test": 12}
    assert loaded.features == pipe.features  # the spec string is kept as it was
    manifest = read_manifest(tmp_path / "digits")
    assert manifest["input"] == {"size": [8, 8], "color_mode": "L"}
    assert manifest["class_names"] == list(data.class_names)


def test_no_scaler_and_string_labels_round_trip(tmp_path, color_data):
    images, y = color_data
    labels = np.array(["cat", "dog", "eel"], dtype=object)[y]  # object labels are stored as strings
    pipe = ImagePipeline("color_hist", KNearestNeighbor(n_neighbors=1), scaler=False,
                         class_names={"cat": "Cat", "dog": "Dog", "eel": "Eel"}).fit(images, labels)
    loaded = load(save(pipe, tmp_path / "m"))
    assert loaded.scaler_ is None and loaded.class_names_ == ["Cat", "Dog", "Eel"]
    assert loaded.class_names == pipe.class_names
    _assert_same_outputs(pipe, loaded, images)


def test_random_state_instances_and_dtypes_round_trip(tmp_path, color_data):
    images, y = color_data
    net = TwoLayerNet(hidden_sizes=(8,), n_epochs=2, dtype="float64", random_state=np.random.RandomState(7))
    pipe = ImagePipeline("raw:size=4", net).fit(images, y)
    loaded = load(save(pipe, tmp_path / "m"))
    before, after = pipe.classifier_.random_state.get_state(), loaded.classifier_.random_state.get_state()
    assert before[0] == after[0] and before[2:] == after[2:]
    np.testing.assert_array_equal(before[1], after[1])
    assert loaded.classifier_.params_["W1"].dtype == np.float64
    knn = load(save(ImagePipeline("raw:size=4", KNearestNeighbor(dtype=np.float64)).fit(images, y), tmp_path / "k"))
    assert knn.classifier_.dtype is np.float64 and knn.scaler_.n_samples_seen_ == len(y)
    _assert_same_outputs(pipe, loaded, images)


def test_manifest_layout(saved_model):
    pipe, path = saved_model
    manifest = json.loads((path / "manifest.json").read_text())
    assert sorted(os.listdir(path)) == ["arrays.npz", "manifest.json"]
    assert manifest["format_version"] == artifacts.FORMAT_VERSION
    assert manifest["cvpipe_version"] and manifest["created"]
    assert manifest["metrics"] == {"test_accuracy": 0.5}
    assert manifest["class_names"] == ["red", "green", "blue"] and manifest["classes"] == [0, 1, 2]
    steps = {s["name"]: s for s in manifest["steps"]}
    assert list(steps) == ["pipeline", "features", "features/bovw", "features/color", "scaler", "classifier"]
    assert steps["classifier"]["class"] == "classifiers.net.TwoLayerNet"
    assert steps["features/color"]["params"]["bins"] == 6
    assert steps["features"]["params"]["extractors"][0] == {"__tuple__": ["bovw", {"__step__": "features/bovw"}]}
    with np.load(path / "arrays.npz", allow_pickle=False) as npz:
        names = set(npz.files)
        np.testing.assert_array_equal(npz["features/bovw/codebook_"], pipe.features_.extractors[0][1].codebook_)
    assert {"classifier/params_/W1", "classifier/running_/running_mean1", "scaler/mean_",
            "features/bovw/whitening_matrix_"} <= names
    assert all(s["class"] in ALLOWED_CLASSES for s in manifest["steps"])


def test_loaded_pipeline_can_be_cloned_and_refitted(saved_model, color_data):
    images, y = color_data
    pipe, path = saved_model
    refit = clone(load(path)).fit(images, y)
    _assert_same_outputs(clone(pipe).fit(images, y), refit, images)


# -------------------------------------------------------------- refusing bad files
def _rewrite_manifest(path, edit):
    manifest = json.loads((path / "manifest.json").read_text())
    edit(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


def _step(manifest, name):
    return next(s for s in manifest["steps"] if s["name"] == name)


def test_flipped_byte_in_arrays_is_refused(model):
    _, path = model
    data = bytearray((path / "arrays.npz").read_bytes())
    data[len(data) // 2] ^= 0x01
    (path / "arrays.npz").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"arrays\.npz: sha256 .*same size, different content"):
        load(path)


def test_truncated_arrays_are_refused(model):
    _, path = model
    data = (path / "arrays.npz").read_bytes()
    (path / "arrays.npz").write_bytes(data[: len(data) - 100])
    with pytest.raises(ArtifactError, match=r"arrays\.npz: sha256 .*truncated"):
        load(path)


@pytest.mark.parametrize("step, cls", [("classifier", "os.system"), ("features/color", "subprocess.Popen"),
                                       ("pipeline", "builtins.eval"),
                                       ("scaler", "sklearn.tree.ExtraTreeClassifier")])
def test_class_outside_the_allow_list_is_refused(model, step, cls):
    _, path = model
    _rewrite_manifest(path, lambda m: _step(m, step).update({"class": cls}))
    with pytest.raises(ArtifactError, match=rf"manifest\.json: step '{step}' names class '{cls}'.*allow-list"):
        load(path)


@pytest.mark.parametrize("version", [3, 0, "1", None, True])
def test_unsupported_format_version_is_refused(model, version):
    _, path = model
    _rewrite_manifest(path, lambda m: m.update({"format_version": version}))
    with pytest.raises(ArtifactError, match=r"manifest\.json: format_version .* not supported"):
        load(path)


def test_a_format_1_model_loads_and_predicts_the_same(model, color_data):
    """Format 1 named the pipeline class by its old module; it is read as format 2."""
    pipe, path = model
    expected = pipe.predict(color_data[0])

    def as_format_1(manifest):
        manifest["format_version"] = 1
        manifest["steps"][0]["class"] = "pipeline.image_pipeline.ImagePipeline"
        _step(manifest, "classifier")["params"]["reg"] = 1e-4  # the old default, in the old convention

    _rewrite_manifest(path, as_format_1)
    assert read_manifest(path)["migrated_from"] == 1
    loaded = load(path)
    np.testing.assert_array_equal(loaded.predict(color_data[0]), expected)
    assert loaded.classifier_.reg == TwoLayerNet().reg == 5e-5


@pytest.mark.parametrize("missing", ["manifest.json", "arrays.npz", ""])
def test_missing_file_is_refused(model, missing):
    _, path = model
    if missing:
        (path / missing).unlink()
        match = rf"{missing}: missing"
    else:
        shutil.rmtree(path)
        match = "no such model folder"
    with pytest.raises(ArtifactError, match=match):
        load(path)


def test_foreign_manifest_is_refused(model):
    _, path = model
    (path / "manifest.json").write_text("not json {")
    with pytest.raises(ArtifactError, match=r"manifest\.json: not valid JSON"):
        load(path)
    (path / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ArtifactError, match="not a cvpipe model manifest"):
        load(path)


def _replace_arrays(path, arrays):
    """Write a new arrays.npz (pickling allowed, as an attacker would) and fix up the manifest."""
    with open(path / "arrays.npz", "wb") as fh:
        np.savez(fh, **arrays)  # allow_pickle defaults to True when writing
    digest, size = _io.file_sha256(path / "arrays.npz"), (path / "arrays.npz").stat().st_size
    _rewrite_manifest(path, lambda m: m["arrays"].update({"sha256": digest, "bytes": size}))


class _Payload:
    """Unpickling this would create the marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def test_object_array_is_refused_without_unpickling(model, tmp_path):
    _, path = model
    marker = tmp_path / "pwned"
    with np.load(path / "arrays.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    evil = np.empty(1, dtype=object)
    evil[0] = _Payload(marker)
    arrays["classifier/params_/W1"] = evil
    _replace_arrays(path, arrays)  # the sha256 matches: only allow_pickle=False stands in the way
    with pytest.raises(ArtifactError, match=r"arrays\.npz: array 'classifier/params_/W1' holds Python objects"):
        load(path)
    assert not marker.exists()


def test_undeclared_array_is_refused(model):
    _, path = model
    with np.load(path / "arrays.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["classifier/extra_"] = np.zeros(3)
    _replace_arrays(path, arrays)
    with pytest.raises(ArtifactError, match=r"classifier/extra_"):
        load(path)


@pytest.mark.parametrize("attr, value", [("__class__", None), ("predict", 1), ("_validate_params", 0),
                                         ("n_neighbors", 3)])
def test_state_cannot_set_methods_or_dunders(model, attr, value):
    _, path = model
    _rewrite_manifest(path, lambda m: _step(m, "classifier")["state"].update({attr: value}))
    with pytest.raises(ArtifactError, match=rf"step 'classifier' .*{attr!r} is not a fitted attribute"):
        load(path)


@pytest.mark.parametrize("value", [{"__import__": "os"}, {"__type__": "builtins.eval"},
                                   {"__dtype__": "object"}, {"__step__": "classifier"}, {"__tuple__": 3}])
def test_bad_values_in_params_are_refused(model, value):
    _, path = model
    _rewrite_manifest(path, lambda m: _step(m, "classifier")["params"].update({"activation": value}))
    with pytest.raises(ArtifactError, match=r"step 'classifier'"):
        load(path)


def test_unknown_parameter_is_refused(model):
    _, path = model
    _rewrite_manifest(path, lambda m: _step(m, "scaler")["params"].update({"command": "rm -rf /"}))
    with pytest.raises(ArtifactError, match=r"step 'scaler' .*cannot rebuild it .*command"):
        load(path)


def test_disagreeing_classes_are_refused(model):
    _, path = model
    _rewrite_manifest(path, lambda m: m.update({"classes": [0, 1, 7]}))
    with pytest.raises(ArtifactError, match=r"classes \[0, 1, 7\] disagree"):
        load(path)


# ------------------------------------------------------------------ atomic saving
def _siblings(path):
    return sorted(p.name for p in path.parent.iterdir())


@pytest.fixture
def two_pipelines(color_data):
    images, y = color_data
    a = ImagePipeline("color_hist:bins=8", "knn:n_neighbors=1").fit(images, y)
    b = ImagePipeline("raw:size=4", "knn:n_neighbors=5").fit(images, y)
    return a, b


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_save_replaces_an_existing_model(tmp_path, monkeypatch, two_pipelines, exchange):
    a, b = two_pipelines
    if not exchange:
        monkeypatch.setattr(_io, "exchange_paths", lambda new, path: False)
    save(a, tmp_path / "m")
    save(b, tmp_path / "m")
    assert load(tmp_path / "m").features == "raw:size=4"
    assert _siblings(tmp_path / "m") == ["m"]


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
@pytest.mark.parametrize("where", ["arrays", "manifest", "rename"])
def test_crash_mid_save_keeps_the_previous_model(tmp_path, monkeypatch, two_pipelines, color_data,
                                                 exchange, where):
    a, b = two_pipelines
    images, _ = color_data
    save(a, tmp_path / "m")

    def boom(*args, **kwargs):
        raise OSError("disk full (simulated)")

    if not exchange:
        monkeypatch.setattr(_io, "exchange_paths", lambda new, path: False)
    if where == "arrays":
        monkeypatch.setattr(np, "savez", boom)
    elif where == "manifest":
        monkeypatch.setattr(artifacts, "_write_manifest", boom)
    elif exchange:
        monkeypatch.setattr(_io, "exchange_paths", boom)
    else:
        real_rename = os.rename
        monkeypatch.setattr(os, "rename", lambda src, dst: boom() if ".tmp" in str(src) else real_rename(src, dst))
    with pytest.raises(OSError, match="simulated"):
        save(b, tmp_path / "m")
    monkeypatch.undo()
    assert _siblings(tmp_path / "m") == ["m"]  # no temporary or old folder left behind
    np.testing.assert_array_equal(load(tmp_path / "m").predict(images), a.predict(images))


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_a_saved_model_has_the_permissions_of_a_new_folder(tmp_path, monkeypatch, two_pipelines, umask_022,
                                                            exchange):
    """Readable by the service account or container user that serves it (no mkdtemp 0700)."""
    a, b = two_pipelines
    if not exchange:
        monkeypatch.setattr(_io, "exchange_paths", lambda new, path: False)
    for pipeline in (a, b):  # a new folder, then a replaced one
        save(pipeline, tmp_path / "m")
        assert (tmp_path / "m").stat().st_mode & 0o777 == 0o755
        assert {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "m").iterdir()} == {"manifest.json": 0o644,
                                                                          "arrays.npz": 0o644}


def test_save_refuses_to_replace_what_is_not_a_model(tmp_path, two_pipelines):
    a, _ = two_pipelines
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(ArtifactError, match="not a model folder"):
        save(a, tmp_path / "notes")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArtifactError, match="not a folder"):
        save(a, tmp_path / "file")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"


def test_save_refuses_what_it_cannot_store_safely(tmp_path, color_data):
    images, y = color_data
    with pytest.raises(ArtifactError, match="not fitted"):
        save(ImagePipeline("raw", "knn"), tmp_path / "m")
    foreign = ImagePipeline("raw:size=4", GaussianNB()).fit(images, y)
    with pytest.raises(ArtifactError, match=r"sklearn\.naive_bayes.*GaussianNB is not in the allow-list"):
        save(foreign, tmp_path / "m")
    odd = ImagePipeline("raw:size=4", "knn").fit(images, y)
    odd.metrics_["callback"] = print
    with pytest.raises(ArtifactError, match="metrics_"):
        save(odd, tmp_path / "m")
    assert not (tmp_path / "m").exists() and _siblings(tmp_path / "x") == []


def test_a_model_saved_by_the_format_1_code_predicts_the_same():
    """``data/format1-net`` was saved by cvpipe before format 2 (HOG + raw -> net with
    ``reg=1e-3`` in the old half convention); its probabilities on 20 digits test images
    were saved beside it by the same code."""
    from pipeline.data import load_dataset

    path = pathlib.Path(__file__).with_name("data") / "format1-net"
    expected = np.load(path.with_name("format1-net-proba.npy"))
    manifest = read_manifest(path)
    assert manifest["migrated_from"] == 1 and manifest["format_version"] == artifacts.FORMAT_VERSION
    model = load(path)
    assert model.classifier_.reg == pytest.approx(5e-4)  # the same objective in the new convention
    images = load_dataset("digits", "test").images[:20]
    np.testing.assert_allclose(model.predict_proba(images), expected, rtol=1e-5, atol=1e-7)


# ------------------------------------------------------ tampered manifests (red team)
@pytest.mark.parametrize("version", ["2", "1", 1.5, -1, 10**30, [1], {"v": 2}, None, False, float("nan"),
                                     float("inf")])
def test_a_format_version_of_another_type_or_value_is_refused(model, version):
    _, path = model
    _rewrite_manifest(path, lambda m: m.update({"format_version": version}))
    for read in (read_manifest, load):
        with pytest.raises(ArtifactError, match=r"manifest\.json: format_version .* is not supported"):
            read(path)


@pytest.mark.parametrize("steps, match", [
    ([1, "x", None], "every step needs a name, got 1"),
    ([["pipeline"]], r"every step needs a name, got \['pipeline'\]"),
    ("pipeline", "'steps' is missing or not a list"),
    ({"pipeline": {}}, "'steps' is missing or not a list"),
])
def test_steps_that_are_not_step_objects_are_refused(model, steps, match):
    _, path = model
    _rewrite_manifest(path, lambda m: m.update({"steps": steps}))
    with pytest.raises(ArtifactError, match=match):
        load(path)


@pytest.mark.parametrize("key, value", [("params", [1, 2]), ("params", None), ("params", "reg=1"), ("state", [1]),
                                        ("arrays", {"W1": 1}), ("name", 5)])
def test_step_fields_of_the_wrong_type_are_refused(model, key, value):
    _, path = model
    _rewrite_manifest(path, lambda m: _step(m, "classifier").update({key: value}))
    match = r"manifest\.json: (step 'classifier': '.*' is missing or not a|every step)"
    with pytest.raises(ArtifactError, match=match):
        load(path)


def test_format_1_manifests_with_broken_steps_are_refused(model):
    _, path = model

    def broken(manifest):
        manifest["format_version"] = 1
        manifest["steps"][0]["class"] = "pipeline.image_pipeline.ImagePipeline"
        _step(manifest, "classifier")["params"] = ["reg", 1e-4]

    _rewrite_manifest(path, broken)
    with pytest.raises(ArtifactError, match="step 'classifier': 'params' is missing or not a dict"):
        load(path)


@pytest.mark.parametrize("reg, expected", [(0, 0.0), (2e-4, 1e-4), (1, 0.5)])
def test_format_1_halves_a_numeric_reg_of_the_net(model, reg, expected):
    _, path = model

    def as_format_1(manifest):
        manifest["format_version"] = 1
        manifest["steps"][0]["class"] = "pipeline.image_pipeline.ImagePipeline"
        _step(manifest, "classifier")["params"]["reg"] = reg

    _rewrite_manifest(path, as_format_1)
    assert load(path).classifier_.reg == expected


def test_two_steps_with_one_name_are_refused(model):
    _, path = model
    _rewrite_manifest(path, lambda m: m["steps"].append(dict(_step(m, "classifier"))))
    with pytest.raises(ArtifactError, match="two steps are named 'classifier'"):
        load(path)


@pytest.mark.parametrize("edit, match", [
    (lambda m: m["input"].update(size=[8.0, 8.0]), r"input\.size must be \[height, width\]"),
    (lambda m: m["input"].update(size=[0, 8]), r"input\.size must be \[height, width\]"),
    (lambda m: m["input"].update(size=[True, 8]), r"input\.size must be \[height, width\]"),
    (lambda m: m["input"].update(color_mode="CMYK"), r"input\.color_mode must be one of"),
    (lambda m: m.update(class_names=[0, 1, 2]), "class_names must be 3 strings"),
    (lambda m: m.update(classes=[[0], [1], [2]]), "disagree with the classifier's"),
    (lambda m: m.update(metrics=[]), "'metrics' is missing or not a dict"),
    (lambda m: m["arrays"].update(sha256=5), "'arrays' must name arrays.npz and its sha256"),
    (lambda m: m["arrays"].update(file="../../etc/passwd"), "'arrays' must name arrays.npz and its sha256"),
    (lambda m: _step(m, "classifier")["params"].update(reg={"__scalar__": 5}), "step 'classifier'.*cannot rebuild"),
    (lambda m: _step(m, "classifier")["params"].update(reg={"__items__": [[[1], 2]]}),
     "step 'classifier'.*cannot rebuild"),
    (lambda m: _step(m, "classifier")["params"].update(reg={"__float__": ["nan"]}),
     "step 'classifier'.*cannot rebuild"),
    (lambda m: _step(m, "classifier")["params"].update(reg={"__x": 1, "y": 2}), "unknown value"),
    (lambda m: _step(m, "pipeline")["state"].update(classifier_={"__step__": ["classifier"]}),
     "step 'pipeline'.*cannot rebuild"),
])
def test_top_level_and_tagged_values_of_the_wrong_shape_are_refused(model, edit, match):
    _, path = model
    _rewrite_manifest(path, edit)
    with pytest.raises(ArtifactError, match=match):
        load(path)


@pytest.mark.parametrize("raw, match", [
    (b" " * (artifacts.MAX_MANIFEST_BYTES + 1), "more than a manifest may hold"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    (b'{"format": "cvpipe-model", "x": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001, "not valid JSON"),
    (b"\xff\xfe{}", "not valid JSON"),
    (b"\xef\xbb\xbf{}", "not valid JSON"),
    (b"NaN", "not a cvpipe model manifest"),
    (b"[]", "not a cvpipe model manifest"),
])
def test_manifests_that_are_no_json_object_are_refused(model, raw, match):
    _, path = model
    (path / "manifest.json").write_bytes(raw)
    with pytest.raises(ArtifactError, match=match):
        load(path)


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom"])
def test_a_manifest_linked_to_an_endless_device_is_refused(model, target):
    if not os.path.exists(target):
        pytest.skip(f"no {target} here")
    _, path = model
    (path / "manifest.json").unlink()
    (path / "manifest.json").symlink_to(target)
    with pytest.raises(ArtifactError, match="more than a manifest may hold"):
        load(path)


def test_a_manifest_or_arrays_that_are_folders_are_refused(model):
    _, path = model
    (path / "arrays.npz").unlink()
    (path / "arrays.npz").mkdir()
    with pytest.raises(ArtifactError, match=r"arrays\.npz: missing"):
        load(path)
    (path / "manifest.json").unlink()
    (path / "manifest.json").mkdir()
    with pytest.raises(ArtifactError, match=r"manifest\.json: a folder"):
        load(path)


def test_arrays_linked_to_a_device_are_refused(model):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    _, path = model
    (path / "arrays.npz").unlink()
    (path / "arrays.npz").symlink_to("/dev/zero")
    with pytest.raises(ArtifactError, match=r"arrays\.npz: missing"):
        load(path)


def _rewrite_manifest_text(path, edit):
    """Edit ``manifest.json`` as text (for values json.dumps would not write)."""
    file = path / "manifest.json"
    file.write_text(edit(file.read_text()))


@pytest.mark.parametrize("version", [1.0, 2.0])
def test_a_format_version_must_be_an_integer(model, version):
    _, path = model
    _rewrite_manifest(path, lambda m: m.update({"format_version": version}))
    with pytest.raises(ArtifactError, match=r"format_version .* is not supported"):
        load(path)


@pytest.mark.parametrize("cls", [["x"], {"a": 1}, 7])
def test_a_class_that_is_not_a_string_is_refused_by_name(model, cls):
    _, path = model
    _rewrite_manifest(path, lambda m: _step(m, "classifier").update({"class": cls}))
    with pytest.raises(ArtifactError, match=r"step 'classifier': expected a class name \(a string\)"):
        load(path)


def test_an_integer_of_too_many_digits_is_not_json_here(model):
    _, path = model
    _rewrite_manifest_text(path, lambda text: text.replace('"format_version": 2', '"format_version": ' + "9" * 5000))
    with pytest.raises(ArtifactError, match=r"manifest\.json: not valid JSON"):
        load(path)


@pytest.mark.parametrize("reg", ["1e-3", True, None, float("nan"), [0.001], -1e-3, "HUGE"])
def test_a_format_1_net_needs_a_number_as_its_reg(model, reg):
    _, path = model

    def as_format_1(manifest):
        manifest["format_version"] = 1
        manifest["steps"][0]["class"] = "pipeline.image_pipeline.ImagePipeline"
        _step(manifest, "classifier")["params"]["reg"] = 0.123456 if reg == "HUGE" else reg

    _rewrite_manifest(path, as_format_1)
    if reg == "HUGE":
        _rewrite_manifest_text(path, lambda text: text.replace("0.123456", "1" + "0" * 400))
    with pytest.raises(ArtifactError, match=r"step 'classifier': a format-1 TwoLayerNet's reg must be a number >= 0"):
        load(path)


@pytest.mark.parametrize("scalar", [["int64", 10**30], ["uint8", -1], ["float64", "HUGE"]])
def test_a_numpy_scalar_out_of_its_range_is_refused(model, scalar):
    _, path = model
    _rewrite_manifest(path, lambda m: _step(m, "classifier")["state"].update(
        {"n_iter_": {"__scalar__": [scalar[0], 0.123456 if scalar[1] == "HUGE" else scalar[1]]}}))
    if scalar[1] == "HUGE":
        _rewrite_manifest_text(path, lambda text: text.replace("0.123456", "1" + "0" * 400))
    with pytest.raises(ArtifactError, match=r"step 'classifier'"):
        load(path)


def test_an_archive_that_would_inflate_is_refused_before_it_is_unpacked(model):
    """A crafted arrays.npz with the manifest's sha256 made to match: compressed members of
    zeros unpack to 200 MB from a few hundred KB. Refused from the zip directory alone."""
    import hashlib
    import io
    import tracemalloc
    import zipfile

    _, path = model
    with np.load(path / "arrays.npz", allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    first = next(iter(arrays))
    arrays[first] = np.zeros(50_000_000, np.float32)  # 200 MB of zeros
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    (path / "arrays.npz").write_bytes(buf.getvalue())
    with zipfile.ZipFile(path / "arrays.npz") as z:
        assert sum(i.file_size for i in z.infolist()) > 100 * (path / "arrays.npz").stat().st_size
    digest = hashlib.sha256(buf.getvalue()).hexdigest()
    _rewrite_manifest(path, lambda m: m["arrays"].update(sha256=digest, bytes=len(buf.getvalue())))
    tracemalloc.start()
    try:
        with pytest.raises(ArtifactError, match=r"would unpack to \d+ bytes from \d+ on disk"):
            load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, f"{peak} bytes allocated before refusing it"
