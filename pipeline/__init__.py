"""Datasets, feature specs and the batch extraction job (artifacts and selection to come)."""
from pipeline.datasets import (
    Dataset,
    DatasetError,
    DatasetNotFoundError,
    available_datasets,
    load_dataset,
)
from pipeline.fetch import ChecksumError, FetchError, fetch_dataset
from pipeline.extract import ExtractionError, load_features, run_extraction
from pipeline.spec import SpecError, build_extractor, parse_feature_spec

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
    "build_extractor",
    "load_dataset",
    "load_features",
    "parse_feature_spec",
    "run_extraction",
]
