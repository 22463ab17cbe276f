"""Download the named datasets into the cache, verified against their published MD5s.

``fetch_dataset("fashion-mnist")`` puts the four ``.gz`` IDX files in
``<cache>/fashion-mnist/``; ``"mnist"`` likewise; ``"cifar10"`` puts the tarball in
``<cache>/cifar10/`` and extracts ``cifar-10-batches-py`` beside it. ``<cache>`` is
``$CVPIPE_DATA`` if set, else ``~/.cache/cvpipe`` (the first places ``load_dataset``
searches).

Each file goes to a temporary file in the target folder, is checked against its MD5
and only then renamed into place; a file already there with the right checksum is
not downloaded again. Where the checksums come from:

- Fashion-MNIST: the table in github.com/zalandoresearch/fashion-mnist README.md
  (same values in torchvision/datasets/mnist.py, class FashionMNIST).
- MNIST: torchvision/datasets/mnist.py (class MNIST), served from torchvision's mirror.
- CIFAR-10: torchvision/datasets/cifar.py (``tgz_md5``).
"""
from __future__ import annotations

import functools
import hashlib
import http.client
import logging
import os
import tarfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from pipeline._io import atomic_path
from pipeline.data import cifar
from pipeline.data.datasets import canonical_name, default_cache_dir
from pipeline.version import package_version

logger = logging.getLogger(__name__)

#: name -> {file name: MD5 hex}. Tests patch this.
CHECKSUMS = {
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "cifar10": {
        "cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a",
    },
}

#: name -> official base URL (the file name is appended).
BASE_URLS = {
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "cifar10": "https://www.cs.toronto.edu/~kriz/",
}

CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
_CHUNK = 1 << 20


class FetchError(RuntimeError):
    """A download or an archive failed; the message says which URL or file and why."""


class ChecksumError(FetchError):
    """A downloaded file does not have its published MD5. Nothing was kept."""

    def __init__(self, filename, url, expected, got):
        self.filename, self.url, self.expected, self.got = filename, url, expected, got
        super().__init__(f"checksum mismatch for {filename} from {url}: "
                         f"expected MD5 {expected}, got {got}; the download was deleted")


def fetch_dataset(name, *, cache_dir=None, base_url=None, progress=True, timeout=60):
    """Download ``name`` into ``cache_dir/<name>/`` and verify it.

    Parameters
    ----------
    name : {"fashion-mnist", "mnist", "cifar10"}
    cache_dir : path-like, optional
        Default ``$CVPIPE_DATA``, else ``~/.cache/cvpipe``.
    base_url : str, optional
        Replaces the official host: each file is fetched from ``base_url/<file name>``.
        Default ``$CVPIPE_MIRROR``, else the official location. ``{name}`` in it is
        replaced by the dataset name, so one mirror can serve every dataset
        (``https://mirror.example/datasets/{name}/``).
    progress : bool
        Show a tqdm progress bar per file.
    timeout : float
        Seconds to wait on the network (per connection attempt and per read).

    Returns
    -------
    pathlib.Path
        ``cache_dir/<name>``: what ``load_dataset(name)`` reads when ``cache_dir`` is one of
        its data roots.

    Raises
    ------
    ValueError
        ``name`` cannot be fetched.
    FetchError
        HTTP error, network error, incomplete download, or an unsafe archive.
    ChecksumError
        A file does not match its MD5 (the file, expected and got).
    """
    key = canonical_name(name)
    if key not in CHECKSUMS:
        raise ValueError(f"cannot fetch {name!r}: expected one of {sorted(CHECKSUMS)}")
    base = base_url or os.environ.get("CVPIPE_MIRROR") or BASE_URLS[key]
    base = base.replace("{name}", key)
    dest = (Path(cache_dir).expanduser() if cache_dir else default_cache_dir()) / key
    dest.mkdir(parents=True, exist_ok=True)
    downloaded = False
    for filename, md5 in CHECKSUMS[key].items():
        target = dest / filename
        if target.is_file():
            got = file_md5(target)
            if got == md5:
                logger.info("%s: present, MD5 %s verified; not downloaded again", target, md5)
                continue
            logger.warning("%s: MD5 %s, expected %s; downloading it again", target, got, md5)
        url = f"{base.rstrip('/')}/{filename}"
        download(url, target, md5, progress=progress, timeout=timeout)
        downloaded = True
    if key == "cifar10":
        batches = dest / cifar.BATCHES_FOLDER
        if downloaded or any(cifar.missing_files(batches, s) for s in ("train", "test")):
            safe_extract_tar(dest / CIFAR_ARCHIVE, dest)
    logger.info("%s is in %s", key, dest)
    return dest


def file_md5(path):
    """MD5 hex digest of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url, target, md5, *, progress=True, timeout=60):
    """Stream ``url`` to a temp file beside ``target``, check its MD5, rename it to ``target``.

    On any failure the temp file is removed and ``target`` is left as it was.
    """
    target = Path(target)
    request = urllib.request.Request(url, headers={"User-Agent": f"cvpipe/{package_version()}"})
    logger.info("downloading %s", url)
    with atomic_path(target) as tmp:
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            raise FetchError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise FetchError(f"cannot download {url}: {getattr(exc, 'reason', exc)}") from exc
        with response, open(tmp, "wb") as out:
            got, size = _stream(response, out, url, target.name, progress)
        expected_size = response.headers.get("Content-Length")
        if expected_size is not None and int(expected_size) != size:
            raise FetchError(f"incomplete download of {url}: got {size} of {expected_size} bytes")
        if got != md5:
            raise ChecksumError(target.name, url, md5, got)
    return target


def _stream(response, out, url, label, progress):
    """Copy ``response`` to ``out``; return (MD5 hex, byte count)."""
    digest = hashlib.md5(usedforsecurity=False)
    total = response.headers.get("Content-Length")
    size = 0
    with tqdm(total=int(total) if total else None, unit="B", unit_scale=True,
              unit_divisor=1024, desc=label, disable=not progress, leave=False) as bar:
        try:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as exc:
            raise FetchError(f"download of {url} failed after {size} bytes: {exc!r}") from exc
    return digest.hexdigest(), size


def _unsafe_reason(member, dest):
    """Why ``member`` must not be extracted into ``dest``, or None when it is safe."""
    name = member.name
    parts = PurePosixPath(name).parts
    if not name or name.startswith(("/", "\\")) or PurePosixPath(name).is_absolute():
        return "absolute path"
    if ".." in parts or "\\" in name:
        return "path leaves the target folder"
    if not (member.isfile() or member.isdir()):
        return "not a regular file or folder (links and devices are refused)"
    if not (dest / name).resolve().is_relative_to(dest):
        return "path resolves outside the target folder"
    return None


def safe_extract_tar(archive, dest):
    """Extract a tar archive into ``dest``, refusing unsafe members.

    Every member is checked before anything is written: absolute names, ``..``
    components and anything but regular files and folders (symlinks, hard links,
    devices, FIFOs) make the whole archive refused with a :class:`FetchError`.
    Files are written atomically with mode 0644; owners and modes in the archive
    are ignored.
    """
    archive, dest = Path(archive), Path(dest).resolve()
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                why = _unsafe_reason(member, dest)
                if why:
                    raise FetchError(f"{archive}: refused tar member {member.name!r}: {why}")
            for member in members:
                target = dest / member.name
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                src = tar.extractfile(member)
                with atomic_path(target) as tmp, src, open(tmp, "wb") as out:
                    for chunk in iter(functools.partial(src.read, _CHUNK), b""):
                        out.write(chunk)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise FetchError(f"{archive}: cannot extract ({type(exc).__name__}: {exc})") from exc
    logger.info("extracted %d members of %s into %s", len(members), archive, dest)
    return dest
