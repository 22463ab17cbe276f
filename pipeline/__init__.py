"""The cvpipe library above the kernels: data, models, model selection and batch jobs.

- :mod:`pipeline.data`: datasets, their readers, downloads and the one image decoder;
- :mod:`pipeline.model`: ``ImagePipeline``, the spec registry and grammar, safe artifacts;
- :mod:`pipeline.selection`: kNN cross-validation and random search;
- :mod:`pipeline.jobs`: the batch extraction job and its engines.

Layers run one way (see ARCHITECTURE.md): ``jobs`` and ``selection`` use ``model``,
which uses ``data`` and the ``features`` and ``classifiers`` packages; nothing here
imports the service or the application (``cvpipe``).
"""
from pipeline.data import Dataset, DatasetError, DatasetNotFoundError, available_datasets, fetch_dataset, load_dataset
from pipeline.jobs import ExtractionError, load_features, run_extraction
from pipeline.model import ArtifactError, ImagePipeline, SpecError, build_classifier, build_extractor, load, save
from pipeline.selection import cross_validate_knn, random_search

__all__ = [
    "ArtifactError",
    "Dataset",
    "DatasetError",
    "DatasetNotFoundError",
    "ExtractionError",
    "ImagePipeline",
    "SpecError",
    "available_datasets",
    "build_classifier",
    "build_extractor",
    "cross_validate_knn",
    "fetch_dataset",
    "load",
    "load_dataset",
    "load_features",
    "random_search",
    "run_extraction",
    "save",
]
