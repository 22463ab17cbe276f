"""Datasets, feature and classifier specs, and the batch extraction job.

``ImagePipeline`` (:mod:`pipeline.image_pipeline`), the artifacts (:mod:`pipeline.artifacts`),
model selection (:mod:`pipeline.selection`, :mod:`pipeline.search`), the training workflows
(:mod:`pipeline.workflows`) and the command line (:mod:`pipeline.cli`) are imported from
their modules.
"""
from pipeline.datasets import (
    Dataset,
    DatasetError,
    DatasetNotFoundError,
    available_datasets,
    load_dataset,
)
from pipeline.fetch import ChecksumError, FetchError, fetch_dataset
from pipeline.extract import ExtractionError, load_features, run_extraction
from pipeline.spec import SpecError, build_classifier, build_extractor, parse_feature_spec

__all__ = [
    "ChecksumError",
    "FetchError",
    "available_datasets",
    "fetch_dataset",
    "Dataset",
    "DatasetError",
    "DatasetNotFoundError",
    "ExtractionError",
    "SpecError",
    "build_classifier",
    "build_extractor",
    "load_dataset",
    "load_features",
    "parse_feature_spec",
    "run_extraction",
]
