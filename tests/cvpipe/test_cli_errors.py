"""No user mistake shows a traceback: every sub-command, driven with a corpus of bad
arguments, exits with status 2 and one line on stderr, ``cvpipe: error: ...``.

Also the command line's shape: ``--help`` of every sub-command gives each option's
default and an example, ``--version``, ``-q``/``-v`` after the sub-command, progress
bars only on a terminal.
"""
import argparse
import io
import re
import subprocess
import sys

import pytest

from cvpipe.cli import build_parser, main


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    """Things the corpus points at: a model, a file, an empty folder, bad configs."""
    from cvpipe.commands import train

    root = tmp_path_factory.mktemp("corpus")
    model = root / "model"
    train("digits", "raw", "softmax:n_epochs=1", model, limit=60, progress=False)
    (root / "file.txt").write_text("not a folder\n")
    (root / "empty").mkdir()
    (root / "image.png").write_bytes((root / "file.txt").read_bytes())
    configs = {
        "unknown_key": "dataset: digits\nfeatures: raw\nclassifier: softmax\nlmit: 10\n",
        "bad_limit": "dataset: digits\nfeatures: raw\nclassifier: softmax\nlimit: abc\n",
        "null_out": "dataset: digits\nfeatures: raw\nclassifier: softmax\nout:\n",
        "bad_classifier": "dataset: digits\nfeatures: raw\nclassifier: {name: softmax, parms: {n_epochs: 1}}\n",
        "not_yaml": "dataset: [digits\n",
        "a_list": "- dataset: digits\n",
        "bad_service": "port: eighty\n",
        "unknown_service_key": "max_imgs: 3\n",
    }
    for name, text in configs.items():
        (root / f"{name}.yaml").write_text(text)
    return {"root": root, "model": model, "file": root / "file.txt", "empty": root / "empty",
            "image": root / "image.png"}


# (argv with {placeholders} from `paths`, a regex the one line must match)
CORPUS = [
    # ------------------------------------------------------------------ data
    ("data fetch", "the following arguments are required: name"),
    ("data fetch imagenet", "invalid choice: 'imagenet'"),
    ("data fetch mnist --cache-dir {file}", "file.txt"),
    ("data fetch mnist --bogus", "unrecognized arguments: --bogus"),
    ("data list extra", "unrecognized arguments: extra"),
    ("data list --bogus", "unrecognized arguments: --bogus"),
    ("data", "the following arguments are required: data_command"),
    # ---------------------------------------------------------------- extract
    ("extract --dataset digits --features raw --out {root}/x --chunk-size 0",
     r"argument --chunk-size: expected an integer >= 1, got '0'"),
    ("extract --dataset digits --features raw --out {root}/x --chunk-size -5",
     r"--chunk-size: expected an integer >= 1, got '-5'"),
    ("extract --dataset digits --features raw --out {root}/x --n-jobs -2",
     r"--n-jobs: expected an integer >= 1, or -1 for every core, got '-2'"),
    ("extract --dataset digits --features raw --out {root}/x --n-jobs 0", "--n-jobs: expected an integer >= 1"),
    ("extract --dataset digits --features raw --out {root}/x --fit-samples ten",
     "--fit-samples: expected an integer >= 1, got 'ten'"),
    ("extract --dataset digits --features raw --out {root}/x --seed -1", "--seed: expected an integer >= 0"),
    ("extract --dataset digits --features raw --out {root}/x --size 0", "--size: expected a size"),
    ("extract --dataset digits --features raw --out {root}/x --engine spark", "invalid choice: 'spark'"),
    ("extract --dataset {root}/nope --features raw --out {root}/x", "nope"),
    ("extract --dataset {empty} --features raw --out {root}/x", "empty"),
    ("extract --dataset digits --features sift --out {root}/x", "unknown extractor 'sift'"),
    ("extract --dataset digits --features hog:orientations=0 --out {root}/x", "orientations must be an integer >= 1"),
    ("extract --dataset digits --features {root}/missing.yaml --out {root}/x", "missing.yaml does not exist"),
    ("extract --dataset digits --features raw", "the following arguments are required: --out"),
    ("extract --dataset digits --features raw --out {root}/x --bogus", "unrecognized arguments: --bogus"),
    ("extract --dataset digits --features raw --out {file}", "exists and is not a folder"),  # refused: 2, not 1
    # ------------------------------------------------------------------ cv knn
    ("cv knn --dataset digits --limit -3", r"--limit: expected an integer >= 1, got '-3'"),
    ("cv knn --dataset digits --limit abc", r"--limit: expected an integer >= 1, got 'abc'"),
    ("cv knn --dataset digits --limit 1.5", r"--limit: expected an integer >= 1, got '1.5'"),
    ("cv knn --dataset digits --folds 1", r"--folds: expected an integer >= 2, got '1'"),
    ("cv knn --dataset digits --folds -2", r"--folds: expected an integer >= 2, got '-2'"),
    ("cv knn --dataset digits --k 0,1", r"--k: expected comma-separated integers >= 1 .*got '0,1'"),
    ("cv knn --dataset digits --k 1,a", r"--k: expected comma-separated integers"),
    ("cv knn --dataset digits --metric l3", r"--metric: expected comma-separated values of l1, l2, got 'l3'"),
    ("cv knn --dataset digits --weights heavy", "invalid choice: 'heavy'"),
    ("cv knn --dataset {root}/nope", "nope"),
    ("cv knn --dataset digits --features bovw:n_words=0", "n_words must be an integer >= 1"),
    ("cv knn --limit 10", "the following arguments are required: --dataset"),
    ("cv knn --dataset digits --split bogus --limit 100", "split must be one of"),
    ("cv knn --dataset digits --limit 100 --k 1000", "k=1000 is more than the 80 samples of the smallest"),
    ("cv knn --dataset digits --bogus", "unrecognized arguments: --bogus"),
    ("cv", "the following arguments are required: cv_command"),
    # ------------------------------------------------------------------ search
    ("search --dataset digits --features raw --classifier softmax --space reg=log:1e-6:1e-2 --trials 0",
     r"--trials: expected an integer >= 1, got '0'"),
    ("search --dataset digits --features raw --classifier softmax --space reg=log:1e-6:1e-2 --stages -1",
     r"--stages: expected an integer >= 1, got '-1'"),
    ("search --dataset digits --features raw --classifier softmax --space reg=log:1e-6:1e-2 --folds 1",
     r"--folds: expected 0 \(a validation hold-out\) or an integer >= 2, got '1'"),
    ("search --dataset digits --features raw --classifier softmax --space reg=log:1e-6:1e-2 --n-jobs -3",
     r"--n-jobs: expected an integer >= 1, or -1"),
    ("search --dataset digits --features raw --classifier softmax --space nonsense", "--space: expected name=KIND"),
    ("search --dataset digits --features raw --classifier forest --space reg=log:1e-6:1e-2",
     "unknown classifier 'forest'"),
    ("search --dataset digits --features raw --classifier softmax --space reg=log:1e-6:1e-2 --limit -1",
     "--limit: expected an integer >= 1"),
    ("search --dataset digits --features raw --classifier softmax --space bogus_param=log:1e-6:1e-2 --limit 50",
     "Softmax has no parameter"),
    ("search --dataset digits --features raw --classifier softmax", "the following arguments are required: --space"),
    # ------------------------------------------------------------------- train
    ("train --dataset digits --features raw --classifier softmax --out {root}/m --limit -1",
     r"--limit: expected an integer >= 1, got '-1'"),
    ("train --dataset digits --features raw --classifier softmax --out {root}/m --limit abc",
     r"--limit: expected an integer >= 1, got 'abc'"),
    ("train --dataset digits --features raw --classifier softmax --out {root}/m --seed -1",
     "--seed: expected an integer >= 0"),
    ("train --dataset digits --features raw --classifier softmax --out {root}/m --n-jobs -2", "--n-jobs: expected"),
    ("train --dataset digits --features raw --classifier softmax --out {root}/m --search reg=log:1e-6:1e-2 "
     "--trials 0", "--trials: expected an integer >= 1"),
    ("train --dataset digits --features raw --classifier forest --out {root}/m", "unknown classifier 'forest'"),
    ("train --dataset digits --features sift --classifier softmax --out {root}/m", "unknown extractor 'sift'"),
    ("train --dataset digits --features raw --classifier knn:n_neighbors=0 --out {root}/m",
     "n_neighbors must be an integer >= 1, got 0"),
    ("train --dataset digits --features raw --classifier softmax", r"train needs --out"),
    ("train --dataset {root}/nope --features raw --classifier softmax --out {root}/m", "nope"),
    ("train --dataset digits --features raw --classifier softmax --out {model}",
     r"--out .*model already holds a model: pass --overwrite to replace it"),
    ("train --dataset digits --features raw --classifier softmax --out {file}", "exists and is not a folder"),
    ("train --dataset digits --features raw --classifier softmax --out {root}",
     "non-empty folder without manifest.json"),
    ("train --config {root}/missing.yaml --out {root}/m", "config file .*missing.yaml does not exist"),
    ("train --config {empty} --out {root}/m", "is a folder, not a file"),
    ("train --config {root}/unknown_key.yaml --out {root}/m",
     r"unknown_key.yaml: lmit: unknown key; expected one of dataset, features"),
    ("train --config {root}/bad_limit.yaml --out {root}/m", r"bad_limit.yaml: limit: expected an integer >= 1, "
                                                            r"got 'abc'$"),
    ("train --config {root}/null_out.yaml", r"train needs --out \(or a --config that has them\)"),
    ("train --config {root}/bad_classifier.yaml --out {root}/m", r"classifier: .*unknown key\(s\) \['parms'\]"),
    ("train --config {root}/not_yaml.yaml --out {root}/m", "not_yaml.yaml: not valid YAML"),
    ("train --config {root}/a_list.yaml --out {root}/m", "expected a mapping of keys to values, got list"),
    ("train --from-features {root}/nope --classifier softmax --out {root}/m", "nope"),
    ("train --from-features {root}/nope --out {root}/m", "takes --classifier and --out"),
    ("train --from-features {root}/nope --classifier softmax --out {root}/m --no-scaler", "got --no-scaler"),
    ("train --out {root}/m --bogus", "unrecognized arguments: --bogus"),
    # ---------------------------------------------------------------- evaluate
    ("evaluate {root}/nope --dataset digits", "nope"),
    ("evaluate {file} --dataset digits", "file.txt"),
    ("evaluate {empty} --dataset digits", "empty"),
    ("evaluate {model} --dataset {root}/nope", "nope"),
    ("evaluate {model} --dataset digits --split bogus", "split must be one of"),
    ("evaluate {model}", "the following arguments are required: --dataset"),
    ("evaluate {model} --dataset digits --bogus", "unrecognized arguments: --bogus"),
    # ----------------------------------------------------------------- predict
    ("predict {model} {image} --top-k 0", "top.k"),
    ("predict {model} {image} --top-k -1", "top.k"),
    ("predict {model} {image} --top-k abc", "top-k"),
    ("predict {model} {image} --chunk-size 0", "chunk.size"),
    ("predict {model} {image} --chunk-size -1", "chunk.size"),
    ("predict {root}/nope {image}", "nope"),
    ("predict {file} {image}", "file.txt"),
    ("predict {model}", "the following arguments are required"),
    ("predict {model} {image} --bogus", "unrecognized arguments: --bogus"),
    # ------------------------------------------------------------------ report
    ("report {root}/nope", "nope"),
    ("report {file}", "file.txt"),
    ("report {model} --dataset {root}/nope --out {root}/report", "nope"),
    ("report {model} --bogus", "unrecognized arguments: --bogus"),
    # ------------------------------------------------------------------- serve
    ("serve --port 70000", r"--port: expected an integer in 0..65535, got '70000'"),
    ("serve --port -1", r"--port: expected an integer in 0..65535, got '-1'"),
    ("serve --port http", r"--port: expected an integer in 0..65535, got 'http'"),
    ("serve --workers 0", r"--workers: expected an integer >= 1, got '0'"),
    ("serve --read-timeout 0", r"--read-timeout: expected a number > 0, got '0'"),
    ("serve --read-timeout nan", r"--read-timeout: expected a number > 0, got 'nan'"),
    ("serve --models {root}/nope", "models folder .*nope does not exist"),
    ("serve --models {file}", "file.txt"),
    ("serve --config {root}/missing.yaml", "config file .*missing.yaml does not exist"),
    ("serve --config {root}/bad_service.yaml", r"bad_service.yaml: port: expected a port number in 0..65535, "
                                               r"got 'eighty'$"),
    ("serve --config {root}/unknown_service_key.yaml", r"max_imgs: unknown key; expected one of models, host"),
    ("serve --config {root}/not_yaml.yaml", "not valid YAML"),
    ("serve --bogus", "unrecognized arguments: --bogus"),
    # -------------------------------------------------------------------- demo
    ("demo --port abc --no-serve", r"--port: expected an integer in 0..65535, got 'abc'"),
    ("demo --workers 0 --no-serve", r"--workers: expected an integer >= 1, got '0'"),
    ("demo --models {file} --no-serve", r"--models .*file.txt exists and is not a folder"),
    ("demo --bogus", "unrecognized arguments: --bogus"),
    # -------------------------------------------------------------------- info
    ("info {root}/nope", "nope"),
    ("info {file}", "file.txt"),
    ("info {empty}", "empty"),
    ("info", "the following arguments are required: model"),
    ("info {model} --bogus", "unrecognized arguments: --bogus"),
    # ------------------------------------------------------------------ global
    ("", "the following arguments are required: COMMAND"),
    ("nosuch", "invalid choice: 'nosuch'"),
    ("--bogus train", "unrecognized arguments|invalid choice|required"),
]


def _argv(template, paths):
    return [part.format(**paths) for part in template.split()]


def _one_line_error(capsys):
    out = capsys.readouterr()
    err = out.err
    assert "Traceback" not in err and "Traceback" not in out.out, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("cvpipe: error: "), err
    return lines[0]


@pytest.mark.parametrize("template, match", CORPUS, ids=[t or "(nothing)" for t, _ in CORPUS])
def test_a_bad_command_line_is_one_line_and_status_2(paths, capsys, monkeypatch, template, match):
    import service.server

    # serve() checks what it is given, then becomes gunicorn (exec): that must not be reached
    monkeypatch.setattr(service.server.os, "execve", lambda *a: pytest.fail(f"gunicorn started: {a[1]}"))
    monkeypatch.chdir(paths["root"])
    status = main(["-q", *_argv(template, paths)])
    line = _one_line_error(capsys)
    assert status == 2, line
    assert re.search(match, line), line


def _commands(parser, prefix=()):
    """Every sub-command path of ``parser``: ("data", "fetch"), ("train",), ..."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                path = (*prefix, name)
                children = _commands(sub, path)
                found += children or [path]
    return found


def test_the_corpus_drives_every_sub_command():
    driven = {tuple(t.split()[:len(c)]) for t, _ in CORPUS for c in _commands(build_parser())}
    missing = [" ".join(c) for c in _commands(build_parser()) if c not in driven]
    assert not missing, f"no bad-argument case for: {missing}"


def _parsers(parser, prefix="cvpipe"):
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{prefix} {name}")


@pytest.mark.parametrize("command, parser", list(_parsers(build_parser())), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_help_describes_every_option_with_its_default_and_shows_an_example(command, parser):
    text = parser.format_help()
    assert re.search(r"^examples?:\n  cvpipe", text, re.M), f"{command} --help shows no example"
    for action in parser._actions:
        if not action.option_strings or action.dest in ("help", "version"):
            continue
        assert action.help, f"{command} {action.option_strings[0]} has no help"
        if not (action.nargs == 0 or action.required):  # a flag is off unless given; required has none
            assert "default" in parser._get_formatter()._get_help_string(action), (
                f"{command} {action.option_strings[0]}: its help does not say its default")
    if command in ("cvpipe search", "cvpipe train"):
        assert "--trials TRIALS settings tried in EACH stage" in " ".join(text.split())


def test_version_prints_the_package_version(capsys):
    from pipeline.version import package_version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"cvpipe {package_version()}"


@pytest.mark.parametrize("argv", [["-q", "train"], ["train", "-q"], ["train", "--quiet"]])
def test_quiet_and_verbose_are_taken_before_and_after_the_sub_command(argv):
    args = build_parser().parse_args([*argv, "--out", "x"])
    assert args.quiet is True and args.verbose is False
    args = build_parser().parse_args(["cv", "knn", "--dataset", "digits", "-v"])
    assert args.verbose is True and args.quiet is False


def test_help_exits_0_in_process(capsys):
    assert main(["train", "--help"]) == 0
    assert "--overwrite" in capsys.readouterr().out


# ----------------------------------------------------------------------- progress bars
class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("quiet, tty, shown", [(False, True, True), (True, True, False), (False, False, False)])
def test_evaluate_shows_a_progress_bar_only_on_a_terminal_and_without_q(paths, capsys, monkeypatch, quiet, tty,
                                                                          shown):
    stderr = _Terminal() if tty else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    status = main([*(["-q"] if quiet else []), "evaluate", str(paths["model"]), "--dataset", "digits"])
    assert status == 0
    assert ("predict test" in stderr.getvalue()) is shown, stderr.getvalue()


# ----------------------------------------------------------------- in a real process
@pytest.mark.parametrize("argv, match", [
    (["train", "--limit", "abc", "--out", "x"], r"--limit: expected an integer >= 1, got 'abc'"),
    (["cv", "knn", "--dataset", "digits", "--folds", "-2"], "--folds: expected an integer >= 2"),
    (["serve", "--port", "99999"], "--port: expected an integer in 0..65535"),
    (["evaluate", "no/such/model", "--dataset", "digits"], "no/such/model"),
])
def test_a_bad_command_line_in_a_real_process(tmp_path, argv, match):
    done = subprocess.run([sys.executable, "-m", "cvpipe", *argv], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cvpipe: error: ") and re.search(match, lines[0]), done.stderr


def test_version_in_a_real_process(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cvpipe", "--version"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0 and re.fullmatch(r"cvpipe \S+\n", done.stdout)
