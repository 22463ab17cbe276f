"""Crafted ``classifier.skops`` files (issue 14's red-team pass): each is refused with an
ArtifactError naming the problem, before skops or NumPy builds or allocates anything."""
from __future__ import annotations

import contextlib
import io
import json
import zipfile

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from pipeline.model import ArtifactError, ImagePipeline, save, sklearn_codec


@pytest.fixture(scope="module")
def skops_bytes(tmp_path_factory):
    """The members of a fitted LogisticRegression's ``classifier.skops``, name -> bytes."""
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 255, size=(30, 8, 8)).astype(np.uint8), np.arange(30) % 3
    folder = save(ImagePipeline("raw", LogisticRegression(max_iter=50)).fit(X, y),
                  tmp_path_factory.mktemp("red-team") / "lr")
    with zipfile.ZipFile(folder / "classifier.skops") as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _zip(members):
    """An uncompressed zip of ``members``, a list of (name, bytes) pairs (names may repeat)."""
    out = io.BytesIO()
    with pytest.warns(UserWarning) if len({n for n, _ in members}) < len(members) else contextlib.nullcontext(), \
            zipfile.ZipFile(out, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    return out.getvalue()


def _loads(data):
    return sklearn_codec.loads(data, LogisticRegression, "classifier.skops")


def test_npy_header_promising_more_than_the_member_holds_is_refused_before_allocating(skops_bytes):
    # a header promising 800 GB in a member of a few bytes: NumPy would allocate it first
    name = next(n for n in skops_bytes if n.endswith(".npy"))
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000,), }"
    header = (header + " " * (118 - len(header)) + "\n").encode()
    bomb = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(64)
    data = _zip([(n, bomb if n == name else d) for n, d in skops_bytes.items()])
    with pytest.raises(ArtifactError, match=rf"member {name} promises a 100000000000 array of float64 "
                                            r"\(800000000000 bytes\) in 64 bytes"):
        _loads(data)


def test_member_that_is_not_a_numpy_file_is_refused(skops_bytes):
    name = next(n for n in skops_bytes if n.endswith(".npy"))
    data = _zip([(n, b"not numpy" if n == name else d) for n, d in skops_bytes.items()])
    with pytest.raises(ArtifactError, match=rf"member {name} is not a NumPy array file"):
        _loads(data)


def test_duplicate_members_are_refused(skops_bytes):
    # a first schema.json a different zip reader would pick, naming eval
    evil = json.dumps({"__class__": "eval", "__module__": "builtins", "__loader__": "FunctionNode",
                       "content": {"module": "builtins", "name": "eval"}}).encode()
    data = _zip([("schema.json", evil), *skops_bytes.items()])
    with pytest.raises(ArtifactError, match=r"members named more than once \('schema.json'\)"):
        _loads(data)


@pytest.mark.parametrize("name", ["../../evil.npy", "/abs/evil.npy", "sub/1.npy", "..\\evil.npy", "notes.txt"])
def test_members_with_other_than_plain_names_are_refused(skops_bytes, name):
    data = _zip([*skops_bytes.items(), (name, b"x")])
    with pytest.raises(ArtifactError, match=r"is not a plain file name \(expected schema.json and <id>.npy\)"):
        _loads(data)


def test_the_refusals_are_said_once_not_wrapped(skops_bytes):
    data = _zip([*skops_bytes.items(), ("../evil.npy", b"x")])
    with pytest.raises(ArtifactError) as info:
        _loads(data)
    assert "not a readable skops" not in str(info.value)
    assert str(info.value).count("classifier.skops") == 1


def test_an_untouched_file_still_loads(skops_bytes):
    est = _loads(_zip(list(skops_bytes.items())))
    assert type(est) is LogisticRegression
