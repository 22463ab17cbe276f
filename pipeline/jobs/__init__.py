"""Batch jobs: feature extraction in chunks (:mod:`pipeline.jobs.extract`) on local
processes or a Dask cluster (:mod:`pipeline.jobs.engines`)."""
from pipeline.jobs.engines import ENGINES
from pipeline.jobs.extract import FIT_SAMPLES, ExtractionError, OutputFolderError, load_features, run_extraction
from pipeline.jobs.train import open_extraction, train_from_features

__all__ = ["ENGINES", "FIT_SAMPLES", "ExtractionError", "OutputFolderError", "load_features", "open_extraction",
           "run_extraction", "train_from_features"]
