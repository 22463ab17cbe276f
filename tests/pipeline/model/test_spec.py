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
