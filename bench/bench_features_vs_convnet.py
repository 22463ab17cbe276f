"""Hand-made features against a ConvNet on Fashion-MNIST: test accuracy as the training set
shrinks, fit time, prediction time per image and model size, one JSON line per measured cell.

    python bench/bench_features_vs_convnet.py [--only raw hog ...] [--sizes 1000 5000 60000]
                                              [--seeds 0 1 2] [--configs NAME=PATH ...]
                                              [--results FILE] [--device cpu] [--threads 1]
    python bench/bench_features_vs_convnet.py --render [--results FILE] [--plot PNG]

Pipelines (``--configs``, training configs of ``cvpipe train``, schema in cvpipe/config.py):
``raw`` (configs/fashion-mnist-raw.yaml), ``hog`` (configs/fashion-mnist-hog.yaml),
``hog+bovw+raw`` (configs/fashion-mnist-best.yaml: BoVW + HOG 7x7 + HOG 4x4 + raw pixels) and
``convnet`` (configs/fashion-mnist-convnet.yaml); each config's ``features`` and
``classifier`` are used, its ``dataset`` must be Fashion-MNIST, its ``limit`` and ``seed``
are replaced by the cell's.

A cell is (pipeline, n, seed): a stratified random subset of ``n`` images of the official
60,000 training images drawn with ``seed`` (the subset ``cvpipe train --limit n --seed seed``
trains on; all of them when ``n`` is 60000), the pipeline built from its config with every
``random_state`` (the classifier's and each extractor's that has one) set to ``seed``,
fitted as ``cvpipe train`` fits it (feature extraction, then StandardScaler and the
classifier: :func:`pipeline.model.fitting.extract_features` and ``fit_on_features``), with
the wall time of the fit; then the 10,000 official test images predicted (timed, 4,096 at a
time as ``cvpipe evaluate`` reads them) and scored once; then the model saved with
:func:`pipeline.model.save` into a temporary folder whose size in bytes is the model size.
Every estimator's ``device`` is set to ``--device`` (default ``cpu``), and every BLAS and
OpenMP pool runs ``--threads`` threads (default 1, as bench_accuracy.py: on the shared 2-core
machine a second thread made the raw-pixel net's fit on 200 images 11x slower, 12.1 s
against 1.1 s); the record says whether the classifier warned ``ConvergenceWarning``.

Each cell appends one JSON line to ``--results`` as soon as it is done; a cell already
there is skipped, so the benchmark can run in pieces (``--only convnet``, another session).
A cell already there that was measured with a config of another content is kept, with a
warning: delete its line to measure it again.

``--render`` trains nothing: it reads the results and prints a markdown table (per
pipeline: test accuracy mean ± sample s.d. over the seeds present at each ``--sizes``, the
number of seeds, missing cells said as missing; fit time, prediction time per image and
model size at the largest size) and writes ``--plot``: accuracy against training-set size
(log axis), one line per pipeline with ± s.d. error bars.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from _common import machine_line
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

logger = logging.getLogger("bench_features_vs_convnet")

DEFAULT_CONFIGS = {"raw": "configs/fashion-mnist-raw.yaml", "hog": "configs/fashion-mnist-hog.yaml",
                   "hog+bovw+raw": "configs/fashion-mnist-best.yaml", "convnet": "configs/fashion-mnist-convnet.yaml"}
DEFAULT_SIZES = (1000, 5000, 60000)
DEFAULT_SEEDS = (0, 1, 2)
DEFAULT_RESULTS = "bench/results/features_vs_convnet.jsonl"
DEFAULT_PLOT = "bench/results/features_vs_convnet.png"
DATASET = "fashion-mnist"
PREDICT_CHUNK = 4096  # as cvpipe evaluate reads a split (cvpipe.commands._accuracy_report)
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "OPENBLAS_CORETYPE")


# --- the pure parts (tested in tests/bench/test_bench_features_vs_convnet.py) -------------------

def subset_indices(labels, n, seed):
    """Rows of the training subset of a cell: what ``cvpipe train --limit n --seed seed`` takes.

    Parameters
    ----------
    labels : ndarray of shape (n_samples,)
    n : int
        Images wanted; ``n >= n_samples`` takes every row.
    seed : int

    Returns
    -------
    ndarray of int64, shape (min(n, n_samples),)
        Sorted row indices, each class's share kept (largest remainder), drawn with ``seed``.
    """
    from pipeline.selection import stratified_subset

    return stratified_subset(np.asarray(labels), int(n), seed=int(seed))


def parse_configs(items):
    """``{name: path}`` from ``NAME=PATH`` items, in their order.

    Raises
    ------
    ValueError
        An item without ``=``, an empty name or path, or a name given twice.
    """
    configs = {}
    for item in items:
        name, sep, path = item.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise ValueError(f"--configs expects NAME=PATH items such as raw=configs/fashion-mnist-raw.yaml, "
                             f"got {item!r}")
        if name in configs:
            raise ValueError(f"--configs names {name!r} twice")
        configs[name] = path
    return configs


def cell_key(record):
    """``(pipeline, n_train, seed)``: what identifies a cell in the results file."""
    return record["pipeline"], int(record["n_train"]), int(record["seed"])


def read_results(path):
    """The records of a results file (JSON lines), in file order; ``[]`` if it does not exist.

    A line that is not a JSON object with the cell's keys (one half-written when a run was
    killed) is left out with a warning, so that its cell is measured again.
    """
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            cell_key(record)
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("%s:%d: not a result line (%s); left out", path, number, exc)
            continue
        records.append(record)
    return records


def cells_to_run(pipelines, sizes, seeds, done):
    """The cells ``(pipeline, n, seed)`` of the grid not among ``done`` (keys of
    :func:`cell_key`), pipeline by pipeline, then size, then seed."""
    return [(p, int(n), int(s)) for p in pipelines for n in sizes for s in seeds if (p, int(n), int(s)) not in done]


def append_result(path, record):
    """Append ``record`` as one JSON line to ``path`` (created with its folder), on disk when this returns."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as f:
        if f.tell():  # after a line a killed run left unfinished: a line of its own
            with path.open("rb") as tail:
                tail.seek(-1, os.SEEK_END)
                if tail.read(1) != b"\n":
                    f.write(b"\n")
        f.write(json.dumps(record, sort_keys=True).encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())


def summarize(records, pipelines, sizes, seeds):
    """Per pipeline and size, the records of the wanted seeds, summarized; nothing invented.

    Parameters
    ----------
    records : list of dict
        Results lines (:func:`read_results`).
    pipelines : sequence of str
        Rows, in order; pipelines found only in ``records`` follow, in order of appearance.
    sizes, seeds : sequence of int
        Columns and the seeds counted; records at other sizes or seeds are left out.

    Returns
    -------
    dict
        ``{pipeline: {n: {"n_seeds", "accuracies", "mean", "sd", "fit_seconds",
        "predict_seconds_per_image", "model_bytes", "configs"}}}``; a size without a
        record has ``n_seeds`` 0 and None for the rest; ``sd`` (sample, ddof 1) is None
        with fewer than 2 seeds; times and size are means over the seeds present.
    """
    wanted_sizes, wanted_seeds = [int(n) for n in sizes], {int(s) for s in seeds}
    names = list(dict.fromkeys([*pipelines, *(r["pipeline"] for r in records)]))
    latest = {}
    for r in records:  # a cell written twice (two runs at once): the later line counts
        if int(r["n_train"]) in wanted_sizes and int(r["seed"]) in wanted_seeds:
            latest[cell_key(r)] = r
    table = {}
    for name in names:
        table[name] = {}
        for n in wanted_sizes:
            rs = [latest[k] for k in sorted(latest) if k[0] == name and k[1] == n]
            accs = [float(r["test_accuracy"]) for r in rs]
            mean = lambda key: statistics.fmean(float(r[key]) for r in rs) if rs else None  # noqa: E731
            table[name][n] = {
                "n_seeds": len(rs), "accuracies": accs, "mean": statistics.fmean(accs) if accs else None,
                "sd": statistics.stdev(accs) if len(accs) > 1 else None,
                "fit_seconds": mean("fit_seconds"), "predict_seconds_per_image": mean("predict_seconds_per_image"),
                "model_bytes": mean("model_bytes"), "configs": sorted({r.get("config_sha256", "") for r in rs})}
    return table


def _size_text(n_bytes):
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes:.0f} B"


def accuracy_text(cell, n_wanted):
    """``"89.33% ± 0.23% (3 seeds)"``; ``"89.33% (1 of 3 seeds, no s.d.)"``; ``"missing"``."""
    if cell["n_seeds"] == 0:
        return "missing"
    seeds = f"{cell['n_seeds']} seed{'s' if cell['n_seeds'] > 1 else ''}" if cell["n_seeds"] >= n_wanted \
        else f"{cell['n_seeds']} of {n_wanted} seeds"
    if cell["sd"] is None:
        return f"{cell['mean']:.2%} ({seeds}, no s.d.)"
    return f"{cell['mean']:.2%} ± {cell['sd']:.2%} ({seeds})"


def render_table(table, sizes, n_seeds):
    """The markdown table of :func:`summarize`'s result, as a string (header, rule, one row a pipeline)."""
    sizes = [int(n) for n in sizes]
    top = max(sizes)
    head = ["pipeline", *(f"test accuracy, n = {n:,}" for n in sizes), f"fit (s) at {top:,}",
            f"predict (ms/image) at {top:,}", f"model size at {top:,}"]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    notes = []
    for name, row in table.items():
        last = row[top]
        extra = ["missing"] * 3 if last["n_seeds"] == 0 else [
            f"{last['fit_seconds']:.1f}", f"{last['predict_seconds_per_image'] * 1e3:.3f}",
            _size_text(last["model_bytes"])]
        lines.append("| " + " | ".join([name, *(accuracy_text(row[n], n_seeds) for n in sizes), *extra]) + " |")
        shas = sorted({s for n in sizes for s in row[n]["configs"]})
        if len(shas) > 1:
            notes.append(f"{name}: its cells were measured with {len(shas)} different versions of its config")
    return "\n".join(lines + [f"\nNote: {note}." for note in notes])


def plot_accuracy(table, sizes, path, title):
    """Test accuracy against training-set size (log x), one line per pipeline, ± s.d. error
    bars, the pipelines a little apart in x so that their bars do not overlap; a pipeline's
    missing sizes are left out of its line. PNG of 800 x 500 pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullLocator

    fig = Figure(figsize=(8, 5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    sizes = [int(n) for n in sizes]
    for i, name in enumerate(table):
        row = table[name]
        present = [n for n in sizes if row[n]["n_seeds"]]
        if not present:
            continue
        seeds = "/".join(str(row[n]["n_seeds"]) for n in present)
        shift = np.exp((i - (len(table) - 1) / 2) * 0.03)  # keep the pipelines' error bars apart
        ax.errorbar([n * shift for n in present], [row[n]["mean"] * 100 for n in present],
                    yerr=[(row[n]["sd"] or 0.0) * 100 for n in present], marker="o", capsize=4, lw=1.8,
                    label=f"{name} (seeds: {seeds})")
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(sizes))
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("training images (stratified subset of the 60,000)")
    ax.set_ylabel("test accuracy (%), 10,000 images")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    logger.info("wrote %s", path)
    return path


# --- measuring --------------------------------------------------------------------------------

def seeded_features(spec, seed, device=None):
    """A feature spec as a list of ``{name, params}`` with ``random_state=seed`` (and
    ``device``, if given) in the params of every extractor that takes them.

    ``spec`` is what a training config's ``features`` holds: a spec string (``raw``,
    ``hog:pixels_per_cell=7x7,raw``), a list of ``{name, params}`` or a mapping name -> params.
    """
    from pipeline.model.spec import parse_feature_spec, parse_spec

    if isinstance(spec, str):
        steps = parse_spec(spec, "features")
    elif isinstance(spec, dict):
        steps = [(name, dict(params or {})) for name, params in spec.items()]
    else:
        steps = [(d["name"], dict(d.get("params") or {})) for d in spec]
    built = parse_feature_spec(spec)  # checks names and keys, and tells which take a random_state
    out = []
    for (name, params), (_, extractor) in zip(steps, built):
        accepted = extractor.get_params(deep=False)
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
        if "random_state" in accepted:
            params["random_state"] = int(seed)
        if device is not None and "device" in accepted:
            params["device"] = device
        out.append({"name": name, "params": params})
    return out


def read_pipeline_config(path):
    """``(features, classifier, scaler, sha256)`` of a training config checked by ``cvpipe train``'s own reader.

    Raises
    ------
    ValueError
        A config for another dataset, one with a ``search`` (the bench times one fixed
        configuration), or one without features or classifier.
    """
    from cvpipe.commands import read_config

    doc = read_config(path)
    if doc.get("dataset", DATASET) != DATASET:
        raise ValueError(f"{path}: expected dataset {DATASET!r} (the bench's data), got {doc['dataset']!r}")
    if doc.get("search"):
        raise ValueError(f"{path}: expected a fixed configuration, got a search; write the chosen parameters")
    missing = [k for k in ("features", "classifier") if doc.get(k) is None]
    if missing:
        raise ValueError(f"{path}: expected features and classifier, missing {missing}")
    return doc["features"], doc["classifier"], doc.get("scaler", True), \
        hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _folder_bytes(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def _environment():
    import numpy
    import sklearn
    from threadpoolctl import threadpool_info

    try:
        import numba
        numba_info = {"version": numba.__version__, "threads": numba.config.NUMBA_NUM_THREADS}
    except ImportError:
        numba_info = None
    from pipeline.version import package_version

    try:  # the code measured: the checkout's commit, and whether files differ from it
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent,
                              check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                    text=True, cwd=Path(__file__).parent, check=True).stdout.strip())
        git = {"commit": head, "modified": dirty}
    except (OSError, subprocess.CalledProcessError):
        git = None

    return {"machine": machine_line(), "host": platform.node(), "cpu_count": os.cpu_count(),
            "thread_env": {k: os.environ.get(k) for k in THREAD_ENV},
            "threadpools": [{k: p.get(k) for k in ("user_api", "internal_api", "num_threads", "version")}
                            for p in threadpool_info()],
            "versions": {"python": platform.python_version(), "numpy": numpy.__version__,
                         "scikit-learn": sklearn.__version__, "cvpipe": package_version(), "numba": numba_info},
            "git": git}


def measure_cell(name, config_path, n, seed, train, test, environment, device="cpu"):
    """Fit, time, score and save one cell; returns its record (a JSON-able dict).

    Parameters
    ----------
    name : str
    config_path : str
    n, seed : int
    train, test : pipeline.data.Dataset
        The official training and test splits, in memory.
    environment : dict
        What :func:`_environment` returns, copied into the record.
    device : str or None
    """
    from cvpipe.commands import limited
    from pipeline.model import build_classifier, build_extractor, save
    from pipeline.model.fitting import extract_features, fit_on_features

    features, classifier, scaler, sha = read_pipeline_config(config_path)
    features = seeded_features(features, seed, device)
    data = limited(train, n, seed)  # the same rows as subset_indices(train.labels, n, seed)
    clf = build_classifier(classifier)
    params = clf.get_params(deep=False)
    if "random_state" in params:
        clf.set_params(random_state=seed)
    if device is not None and "device" in params:
        clf.set_params(device=device)
    logger.info("%s n=%d seed=%d: fitting on %d images", name, n, seed, len(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        extractor = build_extractor(features)
        Z = extract_features(extractor, data.images, data.labels)
        t_features = time.perf_counter() - t0
        model = fit_on_features(features, clf, extractor, Z, data.images, data.labels, data.class_names,
                                scaler=scaler)
        fit_s = time.perf_counter() - t0
    for w in caught:
        logger.warning("%s n=%d seed=%d: %s: %s", name, n, seed, w.category.__name__, w.message)
    Z_width = Z.shape[1]
    del Z
    t0 = time.perf_counter()
    pred = np.concatenate([model.predict(test.images[i:i + PREDICT_CHUNK])
                           for i in range(0, len(test), PREDICT_CHUNK)])
    predict_s = time.perf_counter() - t0
    accuracy = float(np.mean(pred == test.labels))
    model.metrics_ = {"train_seconds": round(fit_s, 1), "n_train": len(data), "test_accuracy": accuracy}
    with tempfile.TemporaryDirectory(prefix="bench-fvc-") as tmp:
        save(model, Path(tmp) / "model")
        model_bytes = _folder_bytes(Path(tmp) / "model")
    fitted = model.classifier_
    record = {
        "pipeline": name, "n_train": int(n), "seed": int(seed), "config": str(config_path), "config_sha256": sha,
        "features": features, "classifier": classifier,
        "classifier_params": json.loads(json.dumps(fitted.get_params(deep=False), default=repr)),
        "converged": not any(issubclass(w.category, ConvergenceWarning) for w in caught),
        "fit_warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
        "n_iter": None if getattr(fitted, "n_iter_", None) is None else int(fitted.n_iter_),
        "n_features": int(Z_width), "scaler": bool(scaler), "device": device,
        "fit_seconds": fit_s, "feature_seconds": t_features, "classifier_seconds": fit_s - t_features,
        "n_test": len(test), "predict_seconds": predict_s, "predict_seconds_per_image": predict_s / len(test),
        "test_accuracy": accuracy, "model_bytes": model_bytes,
        "dataset": {"name": DATASET, "train_fingerprint": train.fingerprint(), "test_fingerprint": test.fingerprint()},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv), **environment}
    logger.info("%s n=%d seed=%d: accuracy %.2f%%, fit %.1f s (features %.1f s), predict %.3f ms/image, "
                "model %s", name, n, seed, 100 * accuracy, fit_s, t_features, 1e3 * predict_s / len(test),
                _size_text(model_bytes))
    return record


def run(args, configs):
    from pipeline.data import load_dataset

    records = read_results(args.results)
    done = {cell_key(r): r for r in records}
    pipelines = args.only or list(configs)
    unknown = [p for p in pipelines if p not in configs]
    if unknown:
        raise SystemExit(f"--only: unknown pipeline(s) {unknown}; expected names of --configs: {list(configs)}")
    shas = {}
    for p in pipelines:
        if not Path(configs[p]).is_file():
            raise SystemExit(f"--configs: {p}={configs[p]}: no such file (paths are relative to {Path.cwd()})")
        shas[p] = read_pipeline_config(configs[p])[3]
    for key, record in done.items():
        if key[0] in shas and record.get("config_sha256") != shas[key[0]]:
            logger.warning("cell %s in %s was measured with another version of %s; kept (delete its line to "
                           "measure it again)", key, args.results, configs[key[0]])
    todo = cells_to_run(pipelines, args.sizes, args.seeds, set(done))
    logger.info("%d cells to run, %d of the grid already in %s", len(todo),
                len(pipelines) * len(args.sizes) * len(args.seeds) - len(todo), args.results)
    if not todo:
        return
    train, test = load_dataset(DATASET, "train"), load_dataset(DATASET, "test")
    too_big = [n for n in args.sizes if n > len(train)]
    if too_big:
        raise SystemExit(f"--sizes: expected at most {len(train)} training images, got {too_big}")
    with threadpool_limits(args.threads):  # BLAS and OpenMP pools; oversubscribed threads slowed small products
        environment = {**_environment(), "threads": args.threads}  # the pools as limited
        logger.info("%s; %d thread(s) per native pool", environment["machine"], args.threads)
        for name, n, seed in todo:
            append_result(args.results, measure_cell(name, configs[name], n, seed, train, test, environment,
                                                      args.device))


def render(args, configs):
    records = read_results(args.results)
    if not records:
        raise SystemExit(f"{args.results}: no results to render")
    pipelines = args.only or list(configs)
    table = summarize(records, pipelines, args.sizes, args.seeds)
    if args.only:
        table = {k: v for k, v in table.items() if k in args.only}
    shown = [r for r in records if r["pipeline"] in table and int(r["n_train"]) in args.sizes
             and int(r["seed"]) in args.seeds]
    machines = sorted({r.get("machine", "?") for r in shown})
    threads = sorted({str(r.get("threads", "?")) for r in shown})
    print(render_table(table, args.sizes, len(args.seeds)))
    print(f"\nTest accuracy: mean ± sample s.d. over seeds {', '.join(map(str, args.seeds))}; fit, predict and "
          f"size: means over the seeds present. Results: {args.results}. Machine(s): {'; '.join(machines)}; "
          f"threads per native pool: {', '.join(threads)}.")
    plot_accuracy(table, args.sizes, args.plot,
                  "Fashion-MNIST: test accuracy vs training-set size (mean ± s.d. over seeds)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", metavar="NAME=PATH",
                        default=[f"{k}={v}" for k, v in DEFAULT_CONFIGS.items()],
                        help="pipelines and their training configs (default: %(default)s)")
    parser.add_argument("--only", nargs="+", metavar="PIPELINE", help="run or render only these pipelines")
    parser.add_argument("--sizes", nargs="+", type=int, default=list(DEFAULT_SIZES), help="training-set sizes")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS), help="seeds per cell")
    parser.add_argument("--results", default=DEFAULT_RESULTS, help="JSON-lines results file (appended to)")
    parser.add_argument("--device", default="cpu", help="every estimator's device (cpu, gpu, auto)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of each BLAS/OpenMP pool while measuring (threadpoolctl; default 1)")
    parser.add_argument("--render", action="store_true", help="train nothing: print the table, write the plot")
    parser.add_argument("--plot", default=DEFAULT_PLOT, help="the plot written by --render")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads: expected an integer >= 1, got {args.threads}")
    if any(n < 1 for n in args.sizes) or any(s < 0 for s in args.seeds):
        parser.error(f"expected sizes >= 1 and seeds >= 0, got sizes {args.sizes} and seeds {args.seeds}")
    try:
        configs = parse_configs(args.configs)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    (render if args.render else run)(args, configs)


if __name__ == "__main__":
    main()
