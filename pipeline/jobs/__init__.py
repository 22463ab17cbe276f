"""Batch jobs: feature extraction in chunks (:mod:`pipeline.jobs.extract`) on local
processes or a Dask cluster (:mod:`pipeline.jobs.engines`)."""
from pipeline.jobs.engines import ENGINES
from pipeline.jobs.extract import FIT_SAMPLES, ExtractionError, load_features, run_extraction

__all__ = ["ENGINES", "FIT_SAMPLES", "ExtractionError", "load_features", "run_extraction"]
