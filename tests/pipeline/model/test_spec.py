import json

import pytest

from features import HOG, BagOfVisualWords, ColorHistogram, FeatureStack, RawPixels
from pipeline.model.spec import SpecError, build_extractor, describe_extractor, parse_feature_spec


def test_one_extractor_with_a_pair_and_an_int():
    [(name, hog)] = parse_feature_spec("hog:pixels_per_cell=7,orientations=12")
    assert name == "hog" and isinstance(hog, HOG)
    assert hog.pixels_per_cell == (7, 7) and hog.orientations == 12


def test_several_extractors_and_explicit_pairs():
    steps = parse_feature_spec("hog:pixels_per_cell=7x4,color_hist:bins=16,raw")
    assert [n for n, _ in steps] == ["hog", "color_hist", "raw"]
    assert steps[0][1].pixels_per_cell == (7, 4)
    assert isinstance(steps[1][1], ColorHistogram) and steps[1][1].bins == 16
    assert isinstance(steps[2][1], RawPixels)


def test_repeated_names_are_made_unique():
    assert [n for n, _ in parse_feature_spec("hog:orientations=6,hog:orientations=9")] == ["hog", "hog_2"]


def test_build_extractor_stacks_several():
    assert isinstance(build_extractor("hog"), HOG)
    assert isinstance(build_extractor("hog,bovw:n_words=8"), FeatureStack)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_spec_files(tmp_path, suffix):
    doc = [{"name": "bovw", "params": {"n_words": 16, "random_state": 3}}, {"name": "hog"}]
    path = tmp_path / f"spec{suffix}"
    path.write_text(json.dumps(doc))  # JSON is valid YAML too
    steps = parse_feature_spec(str(path))
    assert isinstance(steps[0][1], BagOfVisualWords) and steps[0][1].n_words == 16
    assert isinstance(steps[1][1], HOG)


def test_describe_is_json_able():
    desc = describe_extractor(build_extractor("hog:pixels_per_cell=7,color_hist"))
    assert [d["class"] for d in desc] == ["HOG", "ColorHistogram"]
    assert desc[0]["params"]["pixels_per_cell"] == [7, 7]
    json.dumps(desc)


@pytest.mark.parametrize(
    "spec, match",
    [
        ("sift", "unknown extractor 'sift'"),
        ("hog:cell=7", "HOG has no parameter 'cell'"),
        ("hog:pixels_per_cell", "expected key=value"),
        ("orientations=9", "starts with a parameter"),
        ("hog,,raw", "empty item"),
        ("", "expected a feature spec"),
        ("missing.yaml", "does not exist"),
    ],
)
def test_bad_specs_say_what_was_expected(spec, match):
    with pytest.raises(SpecError, match=match):
        parse_feature_spec(spec)


def test_bad_yaml_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        parse_feature_spec(str(path))


@pytest.mark.parametrize("text, value", [("7", 7), ("0.5", 0.5), ("1e-3", 1e-3), ("true", True), ("7x4", (7, 4)),
                                         ("hard", "hard")])
def test_values_are_typed(text, value):
    from pipeline.model.spec import parse_value

    assert parse_value(text) == value and type(parse_value(text)) is type(value)


# ------------------------------------------------------------- hostile specs (red team)
@pytest.mark.parametrize("text, value", [
    ("7x", "7x"), ("x7", "x7"), ("7xx7", "7xx7"), ("7x-7", "7x-7"), ("7x7x7", (7, 7, 7)), ("7 x 7", (7, 7)),
    ("0x0", (0, 0)), ("-7", -7), ("1e999", float("inf")), ("null", None), ("hög", "hög"), ("[7, 7]", "[7, 7]"),
    ("{a: 1}", "{a: 1}"), ("&a [*a]", "&a [*a]"),
])
def test_odd_values_are_typed_or_kept_as_text(text, value):
    from pipeline.model.spec import parse_value

    got = parse_value(text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("text", ["!!python/object/apply:os.system ['echo pwned']", "!!python/name:os.system",
                                  "!!python/object:pathlib.Path {}", "!!binary aGVsbG8="])
def test_yaml_tags_in_values_stay_text(text):
    """A value is read by yaml.safe_load: a tag that would build an object is left as the text."""
    from pipeline.model.spec import parse_value

    assert parse_value(text) == text


@pytest.mark.parametrize("spec, match", [
    (" ", "expected a feature spec"),
    (",", "empty item"),
    ("hog,", "empty item"),
    (",hog", "empty item"),
    ("hog:=3", "expected key=value .* got '=3'"),
    ("=", "starts with a parameter"),
    ("=3", "starts with a parameter"),
    (":", "unknown extractor ''"),
    (":orientations=9", "unknown extractor ''"),
    ("hog:pixels_per_cell:7", "expected key=value"),
    ("hog;raw", "unknown extractor 'hog;raw'"),
    ("hog raw", "unknown extractor 'hog raw'"),
    ("ＨＯＧ", "unknown extractor"),
    ("hog:Orientations=9", "HOG has no parameter 'Orientations'"),
    ("hog:pixels_per_cell=[7,7]", "unknown extractor '7]'"),
    ("hog,knn", "unknown extractor 'knn'"),
    ("hog:" + "a" * 10_000 + "=1", "HOG has no parameter"),
    (None, "expected a feature spec"),
    (7, "expected a feature spec"),
])
def test_hostile_feature_specs_are_spec_errors(spec, match):
    with pytest.raises(SpecError, match=match):
        parse_feature_spec(spec)


@pytest.mark.parametrize("spec, match", [
    ("knn,svm", r"expected one classifier in 'knn,svm', got 2: \['knn', 'svm'\]"),
    ("knn:n_neighbors=3,svm", "expected one classifier"),
    ("knn:n_neighbors=3\n,svm", "expected one classifier"),
    ("hog", "unknown classifier 'hog'"),
    ("knn:=3", "expected key=value"),
    ("knn:n_neighbors", "expected key=value"),
    ("n_neighbors=3", "starts with a parameter"),
    ("knn,", "empty item"),
    ("", "expected a classifier spec"),
])
def test_hostile_classifier_specs_are_spec_errors(spec, match):
    from pipeline.model.spec import build_classifier

    with pytest.raises(SpecError, match=match):
        build_classifier(spec)


def test_names_are_case_insensitive_and_aliases_work():
    from classifiers import KNearestNeighbor, TwoLayerNet
    from pipeline.model.spec import build_classifier

    assert isinstance(build_classifier(" KNN "), KNearestNeighbor)
    assert isinstance(build_classifier("kNN:"), KNearestNeighbor)  # a name with no parameters
    net = build_classifier("MLP:hidden_sizes=256x128")
    assert isinstance(net, TwoLayerNet) and net.hidden_sizes == (256, 128)
    assert build_classifier("net:hidden_sizes=256").hidden_sizes == (256,)  # widened to the default's length 1


def test_a_very_long_spec_builds_or_fails_fast():
    steps = parse_feature_spec(",".join(["raw:size=2"] * 300))
    assert len(steps) == 300 and steps[-1][0] == "raw_300"


@pytest.mark.parametrize("doc, match", [
    ("!!python/object/apply:os.system ['echo pwned']\n", "not valid YAML"),
    ("", "expected a list of {name, params}"),
    ("- 3\n", "expected a list of {name, params}"),
    ("- name: sift\n", "unknown extractor 'sift'"),
    ("hog:\n  cell: 7\n", "HOG has no parameter 'cell'"),
])
def test_hostile_spec_files_are_spec_errors(tmp_path, doc, match):
    path = tmp_path / "spec.yaml"
    path.write_text(doc)
    with pytest.raises(SpecError, match=match):
        parse_feature_spec(str(path))


@pytest.mark.parametrize("text", ["3:4", "0x1F", "0b11", "0o17", "yes", "off", "on", "no", "1_000"])
def test_values_yaml_would_turn_into_other_numbers_stay_text(text):
    """YAML 1.1 reads 3:4 as 184, 0x1F as 31, yes as True: a spec value means what it says."""
    from pipeline.model.spec import parse_value

    assert parse_value(text) == text
    assert parse_value("010") == 10 and parse_value(" 7 ") == 7


def test_a_key_given_twice_is_refused():
    from pipeline.model.spec import build_classifier

    with pytest.raises(SpecError, match="'n_neighbors' is given twice for 'knn' in classifier spec"):
        build_classifier("knn:n_neighbors=3,n_neighbors=5")
    with pytest.raises(SpecError, match="'bins' is given twice for 'color_hist'"):
        parse_feature_spec("color_hist:bins=8,bins=16")


def test_odd_digits_are_text_and_huge_numbers_a_clear_error():
    import numpy as np

    from pipeline.model.spec import build_classifier

    net = build_classifier("net:hidden_sizes=²x²")  # superscript digits are not digits here: the text
    with pytest.raises(ValueError, match="hidden_sizes must be a tuple of integers >= 1, got '²x²'"):
        net.fit(np.zeros((4, 2)), [0, 1, 0, 1])
    with pytest.raises(SpecError, match="has 5000 characters: too long for a number"):
        build_classifier("knn:n_neighbors=" + "9" * 5000)


@pytest.mark.parametrize("doc", ["hog: [1, 2]\n", "hog: x\n", '[{"name": "hog", "params": 5}]'])
def test_spec_files_whose_parameters_are_not_a_mapping_are_refused(tmp_path, doc):
    path = tmp_path / "spec.yaml"
    path.write_text(doc)
    with pytest.raises(SpecError, match="expected each extractor as a name and a mapping of parameters"):
        parse_feature_spec(str(path))
