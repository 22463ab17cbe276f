"""A model: extractors -> scaler -> classifier as one estimator, named by specs, saved safely.

:class:`ImagePipeline` (:mod:`pipeline.model.image_pipeline`), the registry and spec
grammar (:mod:`pipeline.model.spec`), and the artifacts (:mod:`pipeline.model.artifacts`,
with the value codec in :mod:`pipeline.model.codec` and, for scikit-learn classifiers, the
skops codec in :mod:`pipeline.model.sklearn_codec`).
"""
from pipeline.model.artifacts import (
    ArtifactError,
    load,
    load_extractor,
    read_manifest,
    read_model,
    save,
    save_extractor,
)
from pipeline.model.image_pipeline import ImagePipeline
from pipeline.model.spec import SpecError, build_classifier, build_extractor, parse_feature_spec

__all__ = [
    "ArtifactError",
    "ImagePipeline",
    "SpecError",
    "build_classifier",
    "build_extractor",
    "load",
    "load_extractor",
    "parse_feature_spec",
    "read_manifest",
    "read_model",
    "save",
    "save_extractor",
]
