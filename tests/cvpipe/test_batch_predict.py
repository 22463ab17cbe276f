"""``cvpipe predict`` over files, folders and globs: rows streamed as CSV or JSON Lines."""
import csv
import io
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from classifiers import KNearestNeighbor
from cvpipe.batch_predict import RowWriter, iter_image_paths, predict_chunks
from cvpipe.cli import main
from pipeline.model import ImagePipeline, load, save

SHADES = {"dark": 20, "grey": 128, "light": 235}  # class name -> the gray level of its images


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A 1-NN on 8x8 gray images of three flat shades: a file's label is its shade's name."""
    rng = np.random.default_rng(0)
    images = np.concatenate([np.clip(level + rng.integers(-8, 9, (10, 8, 8)), 0, 255)
                             for level in SHADES.values()]).astype(np.uint8)
    labels = np.repeat(np.arange(3), 10)
    model = ImagePipeline("raw", KNearestNeighbor(n_neighbors=1, device="cpu"))
    model.fit(images, labels, class_names=list(SHADES))
    out = tmp_path_factory.mktemp("batch") / "model"
    save(model, out)
    return out


def _png(path, shade):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (8, 8), SHADES[shade]).save(path)
    return path


def _run(capsys, *argv):
    status = main(["-q", "predict", *map(str, argv)])
    out = capsys.readouterr()
    return status, out.out, out.err


def _csv(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_a_folder_is_walked_recursively_in_path_order(tmp_path, capsys, caplog, model_dir):
    # made out of order: the rows come sorted by path, component by component
    for rel, shade in [("z.png", "light"), ("b/c.png", "dark"), ("a.png", "grey"), ("b/a/x.PNG", "light"),
                       ("b.jpg", "dark")]:
        _png(tmp_path / "imgs" / rel, shade)  # b.jpg: a JPEG (Pillow goes by the extension)
    (tmp_path / "imgs" / "labels.csv").write_text("path,label\n")
    (tmp_path / "imgs" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    status, out, err = _run(capsys, model_dir, tmp_path / "imgs")
    rows = _csv(out)
    root = str(tmp_path / "imgs")
    assert status == 0, err
    assert [r["path"] for r in rows] == [f"{root}/{p}" for p in ("a.png", "b/a/x.PNG", "b/c.png", "b.jpg", "z.png")]
    assert [r["label"] for r in rows] == ["grey", "light", "dark", "dark", "light"]
    assert all(r["error"] == "" for r in rows)
    # skipped, not silently: named in warnings
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2 and warnings[0].startswith("skipped 1 (hidden") and ".DS_Store" in warnings[0]
    assert warnings[1].startswith("skipped 1 (not an image file name") and warnings[1].endswith("labels.csv")
    status_again, out_again, _ = _run(capsys, model_dir, tmp_path / "imgs")
    assert (status_again, out_again) == (status, out)  # the same bytes every time


def test_the_summary_counts_what_a_folder_walk_skipped(tmp_path, capsys, model_dir):
    _png(tmp_path / "imgs" / "a.png", "dark")
    (tmp_path / "imgs" / "notes.txt").write_text("hello")
    (tmp_path / "imgs" / "loop").symlink_to(tmp_path / "imgs")  # a symlink loop is listed once
    status, out, _ = _run(capsys, model_dir, tmp_path / "imgs", "--output", tmp_path / "p.csv")
    summary = json.loads(out)
    assert status == 0 and (summary["n_images"], summary["n_predicted"], summary["n_failed"]) == (1, 1, 0)
    assert summary["n_skipped"] == 2 and {r.split(";")[0].split(":")[0] for r in summary["skipped"]} == {
        "not an image file name", "a folder reached a second time"}
    assert len(_csv((tmp_path / "p.csv").read_text())) == 1


def test_a_quoted_glob_is_expanded_by_the_command(tmp_path, capsys, model_dir):
    for rel in ("a/1.png", "a/b/2.png", "c/3.png", "c/4.jpg"):
        _png(tmp_path / rel, "grey")
    status, out, err = _run(capsys, model_dir, f"{tmp_path}/**/*.png", f"{tmp_path}/nothing/*.png")
    rows = _csv(out)
    assert status == 1  # the pattern that matches nothing is a failed row
    assert [r["path"] for r in rows] == [f"{tmp_path}/{p}" for p in ("a/1.png", "a/b/2.png", "c/3.png")] + [
        f"{tmp_path}/nothing/*.png"]
    assert [r["label"] for r in rows[:3]] == ["grey"] * 3
    assert rows[3]["error"] == f"{tmp_path}/nothing/*.png: no file matches this pattern" and rows[3]["label"] == ""
    assert err.strip().splitlines()[-1] == "cvpipe: error: 1 of 4 images could not be predicted (their rows' " \
                                           "error says why)"


def test_a_file_named_like_a_pattern_is_read_as_a_file(tmp_path, capsys, model_dir):
    _png(tmp_path / "shot[1].png", "light")
    status, out, _ = _run(capsys, model_dir, tmp_path / "shot[1].png")
    assert status == 0 and _csv(out)[0]["label"] == "light"


def test_good_and_bad_files_are_rows_in_order_and_the_status_is_1(tmp_path, capsys, model_dir):
    good = _png(tmp_path / "good.png", "dark")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:40])
    (tmp_path / "notes.txt").write_text("just text\n")
    (tmp_path / "nothing").mkdir()
    named = [tmp_path / "empty.png", good, tmp_path / "cut.png", tmp_path / "notes.txt", tmp_path / "missing.png",
             tmp_path / "nothing", good]
    status, out, err = _run(capsys, model_dir, *named, "--format", "jsonl")
    rows = [json.loads(line) for line in out.splitlines()]
    assert status == 1 and [r["path"] for r in rows] == list(map(str, named))  # each argument, in order
    bad = [r for r in rows if r["error"] is not None]
    assert [r["path"] for r in bad] == list(map(str, named[0:1] + named[2:6]))
    for row in bad:
        assert row["error"].startswith(row["path"] + ": ") and row["label"] is None and row["top_k"] == []
    assert "No such file or directory" in rows[4]["error"] and "found none" in rows[5]["error"]
    assert [r["label"] for r in rows if r["error"] is None] == ["dark", "dark"]
    assert "Traceback" not in err and err.strip() == "cvpipe: error: 5 of 7 images could not be predicted " \
                                                     "(their rows' error says why)"


def test_a_file_without_permission_is_a_row(tmp_path, capsys, model_dir):
    secret = _png(tmp_path / "secret.png", "dark")
    secret.chmod(0)
    if os.access(secret, os.R_OK):
        pytest.skip("running as root: a file without permissions can still be read")
    status, out, _ = _run(capsys, model_dir, secret)
    assert status == 1 and "Permission denied" in _csv(out)[0]["error"]


def test_csv_has_one_column_per_rank_and_parses_back(tmp_path, capsys, model_dir):
    _png(tmp_path / "a.png", "light")
    (tmp_path / "b.png").write_text("no")
    status, _, _ = _run(capsys, model_dir, tmp_path / "a.png", tmp_path / "b.png", "--top-k", "2",
                        "--output", tmp_path / "p.csv")
    with open(tmp_path / "p.csv", newline="") as fh:
        header, *lines = list(csv.reader(fh))
    assert status == 1
    assert header == ["path", "label", "class_index", "score", "label_2", "score_2", "score_kind", "error"]
    assert all(len(line) == len(header) for line in lines)  # error rows too
    good, bad = (dict(zip(header, line)) for line in lines)
    assert (good["label"], int(good["class_index"]), float(good["score"])) == ("light", 2, 1.0)
    assert good["label_2"] in SHADES and float(good["score_2"]) == 0.0 and good["score_kind"] == "probability"
    assert bad["label"] == bad["score"] == bad["label_2"] == "" and "b.png" in bad["error"]


def test_jsonl_rows_are_the_models_answer_with_path_and_error(tmp_path, capsys, model_dir):
    _png(tmp_path / "a.png", "grey")
    status, _, _ = _run(capsys, model_dir, tmp_path / "a.png", "--output", tmp_path / "p.jsonl", "--top-k", "3")
    (row,) = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    expected = load(model_dir).top_classes(np.full((1, 8, 8), SHADES["grey"], np.uint8), 3)[0]
    assert status == 0 and row == {"path": str(tmp_path / "a.png"), **expected, "error": None}
    assert list(row) == ["path", "label", "class_index", "score", "score_kind", "top_k", "error"]


def test_the_format_comes_from_the_extension_or_the_option(tmp_path, capsys, model_dir):
    _png(tmp_path / "a.png", "grey")
    assert _run(capsys, model_dir, tmp_path / "a.png", "-o", tmp_path / "p.ndjson")[0] == 0
    assert json.loads((tmp_path / "p.ndjson").read_text())["label"] == "grey"
    assert _run(capsys, model_dir, tmp_path / "a.png", "-o", tmp_path / "p.out", "--format", "csv")[0] == 0
    assert _csv((tmp_path / "p.out").read_text())[0]["label"] == "grey"
    status, out, _ = _run(capsys, model_dir, tmp_path / "a.png")  # standard output: CSV
    assert status == 0 and out.startswith("path,label,class_index,score,")


@pytest.mark.parametrize("args, match", [
    (["--top-k", "0"], r"--top-k must be an integer from 1 to 3 \(the model's classes\), got 0"),
    (["--top-k", "-1"], "--top-k must be an integer from 1 to 3 .* got -1"),
    (["--top-k", "4"], "--top-k must be an integer from 1 to 3 .* got 4"),
    (["--chunk-size", "0"], "--chunk-size must be a positive integer, got 0"),
    (["-o", "{tmp}/p.txt"], r"cannot tell the format of --output .*p.txt: expected a name ending in \.csv"),
    (["-o", "{tmp}/old.csv"], r"--output .*old.csv exists: pass --overwrite to replace it"),
    (["--model-dir-missing"], "no such model folder"),
])
def test_usage_errors_are_one_line_status_2_and_write_nothing(tmp_path, capsys, model_dir, args, match):
    _png(tmp_path / "a.png", "grey")
    (tmp_path / "old.csv").write_text("keep me\n")
    model = tmp_path / "no-model" if args == ["--model-dir-missing"] else model_dir
    args = [] if args == ["--model-dir-missing"] else [a.format(tmp=tmp_path) for a in args]
    status, out, err = _run(capsys, model, tmp_path / "a.png", *args)
    assert status == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("cvpipe: error: ") and re.search(match, err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "old.csv"]  # nothing written
    assert (tmp_path / "old.csv").read_text() == "keep me\n"


def test_top_k_defaults_to_five_or_every_class(tmp_path, capsys, model_dir):
    _png(tmp_path / "a.png", "grey")
    status, out, _ = _run(capsys, model_dir, tmp_path / "a.png", "--format", "jsonl")
    assert status == 0 and len(json.loads(out)["top_k"]) == 3  # 3 classes, fewer than 5
    _run(capsys, model_dir, tmp_path / "a.png", "-o", tmp_path / "p.csv")
    assert _run(capsys, model_dir, tmp_path / "a.png", "-o", tmp_path / "p.csv", "--overwrite", "--top-k", "1")[0] == 0
    assert list(_csv((tmp_path / "p.csv").read_text())[0]) == ["path", "label", "class_index", "score",
                                                               "score_kind", "error"]


def test_images_are_decoded_and_predicted_a_chunk_at_a_time(tmp_path, capsys, model_dir, monkeypatch):
    """7 images with --chunk-size 3: three batches of 3, 3 and 1, each chunk's rows on
    disk (flushed) before the next chunk is predicted: a long run holds one chunk, and a
    killed one keeps what it wrote."""
    import cvpipe.batch_predict as batch_predict

    for i in range(7):
        _png(tmp_path / "imgs" / f"{i}.png", list(SHADES)[i % 3])
    out = tmp_path / "p.csv"
    batches, decoded, real_scores, real_decode = [], [], ImagePipeline.class_scores, batch_predict.decode_image

    def scores(model, images):
        batches.append((len(images), len(out.read_text().splitlines()) - 1))  # rows on disk when it is called
        return real_scores(model, images)

    def decode(*args, **kwargs):
        decoded.append(len(batches))  # how many batches were predicted before this image was decoded
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(ImagePipeline, "class_scores", scores)
    monkeypatch.setattr(batch_predict, "decode_image", decode)
    status, _, _ = _run(capsys, model_dir, tmp_path / "imgs", "--chunk-size", "3", "-o", out)
    assert status == 0
    assert batches == [(3, 0), (3, 3), (1, 6)]
    assert decoded == [0, 0, 0, 1, 1, 1, 2]
    assert [r["label"] for r in _csv(out.read_text())] == [list(SHADES)[i % 3] for i in range(7)]


def test_paths_are_listed_lazily(tmp_path):
    """The walk yields the first file before it lists the folders after it."""
    _png(tmp_path / "a" / "1.png", "grey")
    (tmp_path / "b").mkdir()
    paths = iter_image_paths([tmp_path])
    assert next(paths) == (str(tmp_path / "a" / "1.png"), None)
    (tmp_path / "b" / "late.png").write_bytes((tmp_path / "a" / "1.png").read_bytes())  # listed only now
    assert list(paths) == [(str(tmp_path / "b" / "late.png"), None)]


def test_predict_chunks_and_the_writer_from_python(tmp_path, model_dir):
    _png(tmp_path / "a.png", "dark")
    chunks = list(predict_chunks(load(model_dir), [tmp_path / "a.png", tmp_path / "gone.png"], top_k=2))
    stream = io.StringIO()
    RowWriter(stream, "csv", 2).write(chunks[0])
    assert [r["label"] for r in _csv(stream.getvalue())] == ["dark", ""]


@pytest.mark.slow  # a second interpreter that imports the whole application: seconds on a loaded machine
def test_a_reader_that_closes_the_pipe_stops_the_command_quietly(tmp_path, model_dir):
    """``cvpipe predict ... | head -1``: no traceback, no error message, status 1 (not every row written)."""
    import subprocess
    import sys

    image = _png(tmp_path / "a.png", "grey")
    # 2,000 rows are more than a pipe buffers: the command is still writing when the reader leaves
    proc = subprocess.Popen([sys.executable, "-m", "cvpipe", "-q", "predict", str(model_dir), *[str(image)] * 2000,
                             "--chunk-size", "16"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith(b"path,label,")
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1 and err == ""


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("quiet, tty, shown", [(False, True, True), (True, True, False), (False, False, False)])
def test_a_progress_bar_only_on_a_terminal_and_without_q(tmp_path, model_dir, monkeypatch, quiet, tty, shown):
    import sys

    _png(tmp_path / "a.png", "grey")
    monkeypatch.setattr(sys, "stderr", _Terminal() if tty else io.StringIO())
    status = main([*(["-q"] if quiet else []), "predict", str(model_dir), str(tmp_path), "-o", str(tmp_path / "p.csv")])
    bar = sys.stderr.getvalue()
    assert status == 0 and ("predict: 1img" in bar) is shown, bar


def test_a_file_name_that_is_not_utf8_round_trips(tmp_path, capsys, model_dir):
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: a lone surrogate in Python's str
    _png(tmp_path / name, "dark")
    assert _run(capsys, model_dir, tmp_path, "-o", tmp_path / "p.jsonl")[0] == 0
    (row,) = [json.loads(line) for line in (tmp_path / "p.jsonl").read_bytes().decode("utf-8").splitlines()]
    assert os.fsencode(row["path"]) == os.fsencode(tmp_path / name) and row["label"] == "dark"
    assert _run(capsys, model_dir, tmp_path, "-o", tmp_path / "p.csv")[0] == 0
    assert os.fsencode(tmp_path / name) in (tmp_path / "p.csv").read_bytes()  # CSV has no escapes: the bytes
