"""scikit-learn classifiers in a model folder: saved through skops, pickle-free, with an allow-list."""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile

import numpy as np
import pytest
import skops.io
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC, LinearSVC

from pipeline.model import ArtifactError, ImagePipeline, build_classifier, load, read_manifest, save, sklearn_codec
from pipeline.model.artifacts import ALLOWED_CLASSES, describe_steps
from pipeline.model.spec import skops_classes

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

#: Each class of the issue, with parameters that keep the fit fast on 300 digits.
CLASSIFIERS = {
    "logistic_regression": LogisticRegression(max_iter=300),
    "sgd": SGDClassifier(random_state=0),
    "sgd_log_loss": SGDClassifier(loss="log_loss", random_state=0),
    "linear_svc": LinearSVC(),
    "svc": SVC(),
    "knn": KNeighborsClassifier(),
    "knn_kd_tree": KNeighborsClassifier(algorithm="kd_tree"),
    "mlp": MLPClassifier(hidden_layer_sizes=(32,), max_iter=30, random_state=0),
    "random_forest": RandomForestClassifier(n_estimators=8, random_state=0),
    "hist_gradient_boosting": HistGradientBoostingClassifier(max_iter=5, random_state=0),
}


@pytest.fixture(scope="module")
def digits():
    """(train images, train labels, test images): scikit-learn's 8x8 digits as uint8, 300 + 100."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images * 15).astype(np.uint8)
    return images[:300], data.target[:300], images[300:400]


@pytest.fixture(scope="module")
def saved(digits, tmp_path_factory):
    """name -> (fitted pipeline, its model folder) for every classifier of CLASSIFIERS."""
    X, y, _ = digits
    root = tmp_path_factory.mktemp("sklearn-models")
    out = {}
    for name, clf in CLASSIFIERS.items():
        pipe = ImagePipeline("raw", clone(clf)).fit(X, y)
        out[name] = pipe, save(pipe, root / name)
    return out


@pytest.fixture
def copy_of(saved, tmp_path):
    """``copy_of(name)``: a copy of that saved model folder this test may change."""
    return lambda name: shutil.copytree(saved[name][1], tmp_path / name)


def _scores(pipe, X):
    return {m: getattr(pipe.classifier_, m)(pipe._standardize(pipe.extract_features(X)))
            for m in ("predict_proba", "decision_function") if hasattr(pipe.classifier_, m)}


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_round_trip_predicts_identically(saved, digits, name):
    pipe, path = saved[name]
    X_test = digits[2]
    loaded = load(path)
    assert type(loaded.classifier_) is type(pipe.classifier_)
    np.testing.assert_array_equal(loaded.predict(X_test), pipe.predict(X_test))
    expected, got = _scores(pipe, X_test), _scores(loaded, X_test)
    assert expected and got.keys() == expected.keys()
    for method in expected:
        np.testing.assert_array_equal(got[method], expected[method], err_msg=method)
    np.testing.assert_array_equal(loaded.class_scores(X_test)[0], pipe.class_scores(X_test)[0])
    assert loaded.get_params(deep=False)["classifier"].get_params() == pipe.classifier_.get_params()


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_the_manifest_names_the_class_and_pins_the_skops_file(saved, name):
    pipe, path = saved[name]
    manifest = read_manifest(path)
    (step,) = [s for s in manifest["steps"] if s["name"] == "classifier"]
    assert ALLOWED_CLASSES[step["class"]] is type(pipe.classifier_)
    assert step["state"] == {} and step["skops"]["file"] == "classifier.skops"
    data = (path / "classifier.skops").read_bytes()
    assert step["skops"]["sha256"] == hashlib.sha256(data).hexdigest() and step["skops"]["bytes"] == len(data)
    assert describe_steps(manifest)["classifier"]["class"] == step["class"]
    assert sorted(p.name for p in path.iterdir()) == ["arrays.npz", "classifier.skops", "manifest.json"]


def test_the_allow_list_is_derived_from_the_registry():
    assert set(sklearn_codec.TRUSTED_TYPES) == set(skops_classes())
    assert set(sklearn_codec.FITTED_PARTS) <= set(skops_classes())
    assert {type(c) for c in CLASSIFIERS.values()} == set(skops_classes())
    for cls in skops_classes():
        assert cls in ALLOWED_CLASSES.values()


def test_a_kd_tree_is_not_saved_but_rebuilt(saved):
    pipe, path = saved["knn_kd_tree"]
    data = (path / "classifier.skops").read_bytes()
    assert b"KDTree" not in zipfile.ZipFile(io.BytesIO(data)).read("schema.json")
    assert skops.io.get_untrusted_types(data=data) == []
    loaded = load(path).classifier_
    assert type(loaded._tree) is type(pipe.classifier_._tree) and loaded._fit_method == "kd_tree"


def test_classifier_specs_name_the_scikit_learn_classes(digits, tmp_path):
    assert build_classifier("logistic_regression:C=0.5").get_params()["C"] == 0.5
    assert build_classifier("mlp_classifier:hidden_layer_sizes=32").hidden_layer_sizes == (32,)
    assert type(build_classifier("hgb")) is HistGradientBoostingClassifier
    assert type(build_classifier({"name": "rf", "params": {"n_estimators": 3}})) is RandomForestClassifier
    X, y, X_test = digits
    spec = "random_forest:n_estimators=3,random_state=0"
    pipe = ImagePipeline("raw", spec).fit(X, y)
    loaded = load(save(pipe, tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict_proba(X_test), pipe.predict_proba(X_test))
    assert read_manifest(tmp_path / "m")["steps"][0]["params"]["classifier"] == spec


# ------------------------------------------------------------------------ tampering
def _rewrite_manifest(path, change):
    manifest = json.loads((path / "manifest.json").read_text())
    change(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


def _classifier_step(manifest):
    return next(s for s in manifest["steps"] if s["name"] == "classifier")


def _replace_skops(path, data):
    """Write ``data`` as the model's classifier.skops and record its sha256 and size: only the
    allow-list stands between it and skops."""
    (path / "classifier.skops").write_bytes(data)
    _rewrite_manifest(path, lambda m: _classifier_step(m)["skops"].update(
        sha256=hashlib.sha256(data).hexdigest(), bytes=len(data)))


def _with_schema(data, change):
    """The skops archive ``data`` with its schema.json changed by ``change(schema)``."""
    source = zipfile.ZipFile(io.BytesIO(data))
    schema = json.loads(source.read("schema.json"))
    change(schema)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for info in source.infolist():
            body = json.dumps(schema).encode() if info.filename == "schema.json" else source.read(info)
            archive.writestr(info.filename, body)
    return out.getvalue()


def test_a_flipped_byte_is_refused_before_skops_reads_it(copy_of, monkeypatch):
    path = copy_of("logistic_regression")
    data = bytearray((path / "classifier.skops").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / "classifier.skops").write_bytes(bytes(data))
    monkeypatch.setattr(skops.io, "loads", lambda *a, **k: pytest.fail("skops read a file that failed its sha256"))
    with pytest.raises(ArtifactError, match=r"classifier\.skops: sha256 .* \(same size, different content\)"):
        load(path)


def test_a_truncated_or_missing_file_is_refused(copy_of):
    path = copy_of("svc")
    data = (path / "classifier.skops").read_bytes()
    (path / "classifier.skops").write_bytes(data[:-10])
    with pytest.raises(ArtifactError, match=rf"classifier\.skops: {len(data) - 10} bytes where the manifest says "
                                            rf"{len(data)}: truncated"):
        load(path)
    (path / "classifier.skops").unlink()
    with pytest.raises(ArtifactError, match=r"classifier\.skops: missing"):
        load(path)


def _node(module, name, loader="ObjectNode", content=None):
    return {"__class__": name, "__module__": module, "__loader__": loader, "content": content or {}}


_INJECTIONS = {
    # another scikit-learn estimator: skops trusts every one by default, the allow-list does not
    "sklearn.tree._classes.ExtraTreeClassifier": lambda s: s.update(__class__="ExtraTreeClassifier",
                                                                   __module__="sklearn.tree._classes"),
    "collections.OrderedDict": lambda s: s["content"].update(__module__="collections", __class__="OrderedDict"),
    "os.system": lambda s: s["content"]["content"].update(
        callback=_node("os", "system", "FunctionNode", {"module_path": "os", "function": "system"})),
    "builtins.eval": lambda s: s["content"]["content"].update(
        callback=_node("builtins", "eval", "FunctionNode", {"module_path": "builtins", "function": "eval"})),
    # a type of another class's allow-list: a forest's Tree in a logistic regression
    "sklearn.tree._tree.Tree": lambda s: s["content"]["content"].update(tree=_node("sklearn.tree._tree", "Tree")),
}


@pytest.mark.parametrize("injected", _INJECTIONS)
def test_a_type_outside_the_allow_list_is_refused_by_name(copy_of, injected, monkeypatch):
    path = copy_of("logistic_regression")
    _replace_skops(path, _with_schema((path / "classifier.skops").read_bytes(), _INJECTIONS[injected]))
    monkeypatch.setattr(skops.io, "loads", lambda *a, **k: pytest.fail("skops built an object off the allow-list"))
    with pytest.raises(ArtifactError, match=rf"classifier\.skops: holds {injected}, not on the allow-list of types "
                                            r"a LogisticRegression may hold"):
        load(path)


def test_skops_alone_would_trust_another_estimator(saved):
    """Why cvpipe walks the schema itself: skops trusts every scikit-learn estimator by default."""
    data = _with_schema((saved["logistic_regression"][1] / "classifier.skops").read_bytes(),
                        _INJECTIONS["sklearn.tree._classes.ExtraTreeClassifier"])
    assert skops.io.get_untrusted_types(data=data) == []


def test_a_loader_outside_the_list_is_refused(copy_of):
    path = copy_of("logistic_regression")
    inject = lambda s: s["content"]["content"].update(extra=_node("builtins", "list", "PartialNode"))  # noqa: E731
    _replace_skops(path, _with_schema((path / "classifier.skops").read_bytes(), inject))
    with pytest.raises(ArtifactError, match=r"classifier\.skops: holds a node built by skops' PartialNode"):
        load(path)


def test_a_manifest_naming_another_class_is_refused_by_name(copy_of):
    path = copy_of("random_forest")
    _rewrite_manifest(path, lambda m: _classifier_step(m).update({"class": "sklearn.tree.ExtraTreeClassifier"}))
    with pytest.raises(ArtifactError, match=r"step 'classifier' names class 'sklearn\.tree\.ExtraTreeClassifier'.*"
                                            r"not in the allow-list"):
        load(path)


def test_a_file_of_another_allowed_class_is_refused(copy_of, saved):
    """The manifest says SVC, the (re-pinned) file holds a random forest: refused by the SVC's list."""
    path = copy_of("svc")
    _replace_skops(path, (saved["random_forest"][1] / "classifier.skops").read_bytes())
    with pytest.raises(ArtifactError, match=r"holds sklearn\.ensemble\._forest\.RandomForestClassifier, not on the "
                                            r"allow-list of types a SVC may hold"):
        load(path)


def test_a_skops_step_without_its_file_entry_is_refused(copy_of):
    path = copy_of("linear_svc")
    _rewrite_manifest(path, lambda m: _classifier_step(m).pop("skops"))
    with pytest.raises(ArtifactError, match=r"read only from its \.skops file"):
        load(path)


def test_edited_parameters_in_the_manifest_are_refused(copy_of):
    path = copy_of("logistic_regression")
    _rewrite_manifest(path, lambda m: _classifier_step(m)["params"].update(C=2.0))
    with pytest.raises(ArtifactError, match=r"parameters \['C'\] in the manifest disagree with its \.skops file"):
        load(path)


# ------------------------------------------- fitted parts read without bounds checks
def _tampered_copy(pipe, change):
    """skops bytes of the pipeline's classifier after ``change(classifier)``, written by skops
    directly (cvpipe's own save refuses them)."""
    clf = pipe.classifier_
    with pytest.raises(ArtifactError):  # saving refuses it
        change(clf)
        sklearn_codec.dumps(clf, "step 'classifier'")
    return skops.io.dumps(clf)


def _bad_tree(clf):
    clf.estimators_[0].tree_.children_left[0] = 10**6


def _bad_predictor(clf):
    clf._predictors[0][0].nodes["left"][0] = 10**6


def _bad_svc(clf):
    clf._n_support[0] += 3


@pytest.mark.parametrize("name, change, message", [
    ("random_forest", _bad_tree, r"estimators_\[0\]: node 0 of \d+ splits on feature \d+ into nodes 1000000"),
    ("hist_gradient_boosting", _bad_predictor, r"_predictors\[0\]\[0\]: node 0 of \d+ splits .* into nodes 1000000"),
    ("svc", _bad_svc, r"SVC\._n_support .* does not add up to its \d+ support vectors"),
])
def test_crafted_indices_are_refused_before_predict(digits, tmp_path, name, change, message):
    """Indices scikit-learn's compiled code follows unchecked (skops' own warning): a crafted
    file would load and then crash predict."""
    X, y, _ = digits
    pipe = ImagePipeline("raw", clone(CLASSIFIERS[name])).fit(X, y)
    path = save(pipe, tmp_path / name)
    _replace_skops(path, _tampered_copy(pipe, change))
    with pytest.raises(ArtifactError, match=message):
        load(path)


def test_an_extractor_folder_refuses_a_classifier(tmp_path, digits):
    from pipeline.model import save_extractor

    clf = LogisticRegression(max_iter=50).fit(digits[0].reshape(300, -1), digits[1])
    clf.image_shape_, clf.n_features_out_ = (8, 8), 64
    with pytest.raises(ArtifactError, match="only a model folder keeps"):
        save_extractor(clf, tmp_path / "x")
