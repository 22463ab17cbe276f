"""Where datasets are looked for, downloaded and unpacked.

``$CVPIPE_DATA`` (when set), ``~/.cache/cvpipe``, then ``/usr/share/datasets`` (Debian's
``dataset-fashion-mnist`` installs there) are searched for named datasets; downloads go
to the first. Gzipped IDX files are decompressed once into ``$CVPIPE_CACHE`` (default
``<the first data root>/decompressed``) and memory-mapped from there.
"""
from __future__ import annotations

import os
from pathlib import Path

#: Searched last; Debian's ``dataset-fashion-mnist`` installs into it. Patchable in tests.
SYSTEM_DATA_DIR = Path("/usr/share/datasets")


def data_roots():
    """Folders searched for named datasets, in order.

    ``$CVPIPE_DATA`` (when set), ``~/.cache/cvpipe``, then ``/usr/share/datasets``.
    A dataset NAME lives in ``<root>/NAME/``.
    """
    roots = []
    if os.environ.get("CVPIPE_DATA"):
        roots.append(Path(os.environ["CVPIPE_DATA"]).expanduser())
    roots.append(Path.home() / ".cache" / "cvpipe")
    roots.append(Path(SYSTEM_DATA_DIR))
    return roots


def default_cache_dir():
    """Where downloads go: ``$CVPIPE_DATA`` if set, else ``~/.cache/cvpipe``."""
    return data_roots()[0]


def decompressed_dir():
    """Where gzipped files are decompressed once: ``$CVPIPE_CACHE``, else ``<cache>/decompressed``."""
    if os.environ.get("CVPIPE_CACHE"):
        return Path(os.environ["CVPIPE_CACHE"]).expanduser()
    return default_cache_dir() / "decompressed"
