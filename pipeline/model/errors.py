"""The one error of model artifacts, shared by the codecs (:mod:`pipeline.model.codec`,
:mod:`pipeline.model.sklearn_codec`) and :mod:`pipeline.model.artifacts`."""
from __future__ import annotations


class ArtifactError(ValueError):
    """A model folder that cannot be saved or loaded; the message names the file and why."""
