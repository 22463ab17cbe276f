"""The extractor artifact a batch job's workers load: the safe format, round trips equal."""
import json

import numpy as np
import pytest

from features import HOG, BagOfVisualWords, ColorHistogram, FeatureStack, RawPixels
from pipeline.model import ArtifactError, load, load_extractor, save_extractor
from pipeline.model.artifacts import MANIFEST

EXTRACTORS = {
    "raw": lambda: RawPixels(size=8),
    "color": lambda: ColorHistogram(bins=8),
    "hog": lambda: HOG(pixels_per_cell=(4, 4), cells_per_block=(2, 2)),
    "bovw": lambda: BagOfVisualWords(n_words=8, patch_size=4, n_fit_descriptors=1500, assignment="soft",
                                     spatial_pyramid=True, random_state=1),
    "stack": lambda: FeatureStack([("hog", HOG(pixels_per_cell=(4, 4))),
                                   ("bovw", BagOfVisualWords(n_words=6, patch_size=4, random_state=0))]),
}


@pytest.mark.parametrize("name", EXTRACTORS)
def test_a_saved_extractor_transforms_exactly_the_same(tmp_path, color_data, name):
    images, y = color_data
    fitted = EXTRACTORS[name]().fit(images, y)
    sha = save_extractor(fitted, tmp_path / "ex")
    loaded, found = load_extractor(tmp_path / "ex")
    assert found == sha and len(sha) == 64
    assert type(loaded) is type(fitted) and loaded.n_features_out_ == fitted.n_features_out_
    np.testing.assert_array_equal(loaded.transform(images), fitted.transform(images))


def test_an_unfitted_extractor_is_not_saved(tmp_path):
    with pytest.raises(ArtifactError, match="expected a fitted extractor"):
        save_extractor(HOG(), tmp_path / "ex")
    assert not (tmp_path / "ex").exists()


@pytest.fixture
def saved(tmp_path, color_data):
    images, y = color_data
    save_extractor(EXTRACTORS["bovw"]().fit(images, y), tmp_path / "ex")
    return tmp_path / "ex"


def test_changed_arrays_are_refused(saved):
    arrays = next(p for p in saved.iterdir() if p.name != MANIFEST)
    data = bytearray(arrays.read_bytes())
    data[len(data) // 2] ^= 0xFF
    arrays.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256"):
        load_extractor(saved)


def test_a_model_and_an_extractor_are_not_mistaken_for_each_other(saved, tmp_path, color_data):
    with pytest.raises(ArtifactError, match="not a cvpipe model manifest"):
        load(saved)
    from pipeline.model.artifacts import save
    from pipeline.model.image_pipeline import ImagePipeline

    images, y = color_data
    save(ImagePipeline("hog:pixels_per_cell=4", "knn").fit(images, y), tmp_path / "model")
    with pytest.raises(ArtifactError, match="not a cvpipe extractor manifest"):
        load_extractor(tmp_path / "model")
    with pytest.raises(ArtifactError, match="no such extractor folder"):
        load_extractor(tmp_path / "nothing")


def test_an_extractor_that_disagrees_with_its_manifest_is_refused(saved):
    manifest = json.loads((saved / MANIFEST).read_text())
    manifest["n_features"] = 7
    (saved / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="expected a fitted extractor of 7 features"):
        load_extractor(saved)


@pytest.mark.parametrize("version", [2, "1", 1.0, None])
def test_unknown_format_versions_are_refused(saved, version):
    manifest = json.loads((saved / MANIFEST).read_text())
    manifest["format_version"] = version
    (saved / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="format_version"):
        load_extractor(saved)
