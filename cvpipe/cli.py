"""The ``cvpipe`` command line (console script ``cvpipe``, or ``python -m cvpipe``).

Each sub-command lives in a small ``_cmd_*`` function; errors a user can fix (bad
input, missing files) end with ``cvpipe: error: ...`` and exit status 2, a job that
ran and failed part-way with status 1.

Every name an option offers comes from the module that defines it: the extractor and
classifier names from the spec registry, devices, metrics, engines and the datasets
that can be fetched from theirs.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from classifiers.knn import WEIGHTS
from compute.backend import DEVICES
from compute.distances import METRICS
from cvpipe.commands import evaluate, predict, random_search_on_dataset, read_config, report, train, train_on_features
from cvpipe.demo import prepare_demo
from pipeline._io import format_json, write_json
from pipeline.data import NAMED_DATASETS, DatasetError, ImageError, available_datasets, fetch_dataset
from pipeline.data.fetch import CHECKSUMS
from pipeline.jobs import ENGINES, FIT_SAMPLES, ExtractionError, run_extraction
from pipeline.model import ArtifactError
from pipeline.model.spec import names
from pipeline.selection import cv_knn_on_dataset
from service.server import serve

logger = logging.getLogger("cvpipe")
FEATURES_HELP = ("feature spec such as 'hog:pixels_per_cell=7x7,color_hist:bins=16', or a JSON/YAML file; "
                 f"extractors: {', '.join(names('features'))}")
DATASET_HELP = (f"{', '.join(NAMED_DATASETS)}, an image folder, a .npz file, a folder of IDX files, a CSV listing "
                "of path,label (local paths or fsspec URLs) or a folder of WebDataset .tar shards")
CLASSIFIER_HELP = f"classifier spec such as 'net:hidden_sizes=256'; classifiers: {', '.join(names('classifier'))}"


def _print_json(obj):
    sys.stdout.write(format_json(obj) + "\n")


def _cmd_data_fetch(args):
    path = fetch_dataset(args.name, cache_dir=args.cache_dir, base_url=args.mirror,
                         progress=not args.quiet)
    _print_json({"dataset": args.name, "path": str(path)})


def _cmd_data_list(args):
    _print_json(available_datasets())


def _cmd_extract(args):
    manifest = run_extraction(
        args.dataset,
        args.features,
        args.out,
        split=args.split,
        fit_split=args.fit_split,
        engine=args.engine,
        scheduler=args.scheduler,
        n_jobs=args.n_jobs,
        chunk_size=args.chunk_size,
        fit_samples=args.fit_samples,
        seed=args.seed,
        size=args.size,
        mode=args.mode,
        progress=not args.quiet,
        overwrite=args.overwrite,
    )
    _print_json({k: manifest[k] for k in ("dataset", "n_features", "files", "timings", "engine")})


def _cmd_demo(args):
    summary = prepare_demo(args.models, fetch=not args.no_fetch, progress=not args.quiet)
    metrics = summary.get("metrics", {})
    print(f"cvpipe demo: {summary['why']}.")
    print(f"  model      {summary['model']} ({summary['status']}; test accuracy "
          f"{metrics.get('test_accuracy', float('nan')):.1%})")
    print(f"  sample     {summary['sample']} (a {summary['sample_label']})")
    url = f"http://{args.host}:{args.port}"
    print(f"  try it     curl -s -F image=@{summary['sample']} {url}/predict")
    print(f"  or open    {url}/ in a browser")
    if args.no_serve:
        return
    sys.stdout.flush()
    serve(args.models, host=args.host, port=args.port, workers=args.workers)


def _size(text):
    try:
        values = [int(v) for v in text.lower().split("x")]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected a size such as 64 or 48x64 (height x width), got {text!r}")
    return values[0] if len(values) == 1 else tuple(values)


def _ints(text):
    return [int(v) for v in text.split(",") if v.strip()]


def _cmd_cv_knn(args):
    result = cv_knn_on_dataset(args.dataset, args.features, args.limit, split=args.split, ks=_ints(args.k),
                               metrics=tuple(args.metric.split(",")), weights=args.weights,
                               n_folds=args.folds, seed=args.seed, device=args.device)
    if args.json:
        result.to_json(args.json)
    if args.plot:
        from cvpipe.reports import plot_knn_cv  # matplotlib: the optional "plot" extra

        plot_knn_cv(result, args.plot)
    print(result.format_table())


def _cmd_search(args):
    doc = random_search_on_dataset(args.dataset, args.features, args.classifier, args.space, limit=args.limit,
                                   seed=args.seed, trials=args.trials, stages=args.stages, folds=args.folds,
                                   n_jobs=args.n_jobs, scheduler=args.scheduler, progress=not args.quiet)
    if args.json:
        write_json(args.json, doc)
    _print_json({"best": doc["best"], "n_trials": len(doc["trials"])})


def _cmd_train(args):
    if args.from_features:
        given = [f"--{k}" for k in ("config", "features", "limit", "search") if getattr(args, k) is not None]
        if given or not args.classifier:
            raise ValueError(f"train --from-features takes --classifier (required), --out, --seed and --dataset "
                             f"(to score its test split); got {', '.join(given) or 'no --classifier'}")
        _print_json(train_on_features(args.from_features, args.classifier, args.out, dataset=args.dataset,
                                      seed=args.seed, progress=not args.quiet))
        return
    config = read_config(args.config) if args.config else {}
    for key in ("dataset", "features", "classifier", "limit"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    missing = [k for k in ("dataset", "features", "classifier") if not config.get(k)]
    if missing:
        raise ValueError(f"train needs {', '.join('--' + m for m in missing)} (or a --config that has them)")
    if args.search:
        config["search"] = {"space": args.search, "trials": args.trials, "stages": args.stages, "folds": args.folds}
    config.setdefault("seed", args.seed)
    _print_json(train(out=args.out, n_jobs=args.n_jobs, scheduler=args.scheduler, progress=not args.quiet,
                      **config))


def _cmd_evaluate(args):
    result = evaluate(args.model, args.dataset, args.split)
    _print_json({k: v for k, v in result.items() if k != "confusion_matrix"} | {
        "confusion_matrix": [" ".join(f"{c:5d}" for c in row) for row in result["confusion_matrix"]]})


def _cmd_predict(args):
    result = predict(args.model, args.images, top_k=args.top_k)
    _print_json(result)
    if any("error" in p for p in result["predictions"]):
        raise ValueError("some images could not be read (see their 'error' entries above)")


def _cmd_report(args):
    _print_json(report(args.model, args.out or Path(args.model) / "report", args.dataset, args.split))


def _add_workflows(sub):
    cv = sub.add_parser("cv", help="cross-validate hyperparameters")
    cv_sub = cv.add_subparsers(dest="cv_command", required=True)
    knn = cv_sub.add_parser("knn", help="cross-validate k and the distance metric of kNN")
    knn.add_argument("--dataset", required=True, help=DATASET_HELP)
    knn.add_argument("--split", default="train")
    knn.add_argument("--limit", type=int, help="a stratified subset of this many images")
    knn.add_argument("--features", default="raw", help=FEATURES_HELP)
    knn.add_argument("--k", default="1,3,5,8,10,12,15,20,50,100")
    knn.add_argument("--metric", default=",".join(METRICS), help=f"comma-separated, of {', '.join(METRICS)}")
    knn.add_argument("--weights", default="uniform", choices=WEIGHTS)
    knn.add_argument("--folds", type=int, default=5)
    knn.add_argument("--seed", type=int, default=0)
    knn.add_argument("--device", default="auto", choices=DEVICES)
    knn.add_argument("--json", help="write every fold's accuracy here")
    knn.add_argument("--plot", help="write cs231n's accuracy-against-k plot here (PNG)")
    knn.set_defaults(func=_cmd_cv_knn)

    def search_args(p, required):
        p.add_argument("--search" if not required else "--space", required=required,
                       help="space such as 'learning_rate=log:1e-4:1e-1,reg=log:1e-6:1e-2'")
        p.add_argument("--trials", type=int, default=10, help="settings per stage")
        p.add_argument("--stages", type=int, default=2, help="1 coarse stage, then fine stages")
        p.add_argument("--folds", type=int, default=0, help="0: validation hold-out; k: k-fold CV")
        p.add_argument("--n-jobs", type=int, default=1)
        p.add_argument("--scheduler", help="Dask scheduler address for the trials")
        p.add_argument("--seed", type=int, default=0)

    search = sub.add_parser("search", help="coarse-to-fine random search of classifier hyperparameters")
    search.add_argument("--dataset", required=True, help=DATASET_HELP)
    search.add_argument("--features", required=True, help=FEATURES_HELP)
    search.add_argument("--classifier", required=True, help=CLASSIFIER_HELP)
    search.add_argument("--limit", type=int)
    search.add_argument("--json", help="write the table of every trial here")
    search_args(search, required=True)
    search.set_defaults(func=_cmd_search)

    train = sub.add_parser("train", help="train a pipeline and save it as a model folder")
    train.add_argument("--config", help="YAML/JSON with dataset, features, classifier, limit, seed, search")
    train.add_argument("--from-features", metavar="DIR",
                       help="train on the output folder of 'cvpipe extract' (memory-mapped, in blocks); the model "
                            "uses that job's extractor; --dataset then only names the test split to score")
    train.add_argument("--dataset", help=DATASET_HELP)
    train.add_argument("--features", help=FEATURES_HELP)
    train.add_argument("--classifier", help=CLASSIFIER_HELP)
    train.add_argument("--limit", type=int)
    train.add_argument("--out", required=True, help="model folder, e.g. models/default")
    search_args(train, required=False)
    train.set_defaults(func=_cmd_train)

    ev = sub.add_parser("evaluate", help="accuracy and confusion matrix of a saved model")
    ev.add_argument("model")
    ev.add_argument("--dataset", required=True, help=DATASET_HELP)
    ev.add_argument("--split", default="test")
    ev.set_defaults(func=_cmd_evaluate)

    pr = sub.add_parser("predict", help="top classes of image files")
    pr.add_argument("model")
    pr.add_argument("images", nargs="+")
    pr.add_argument("--top-k", type=int, default=5)
    pr.set_defaults(func=_cmd_predict)

    rep = sub.add_parser("report", help="plots of a saved model (PNG)")
    rep.add_argument("model")
    rep.add_argument("--dataset", help="adds the confusion matrix and a HOG picture")
    rep.add_argument("--split", default="test")
    rep.add_argument("--out", help="default: MODEL/report")
    rep.set_defaults(func=_cmd_report)


def _cmd_serve(args):
    serve(args.models, host=args.host, port=args.port, workers=args.workers, read_timeout=args.read_timeout)


def _add_serve(sub):
    serve = sub.add_parser("serve", help="run the prediction service under gunicorn")
    serve.add_argument("--models", default=os.environ.get("CVPIPE_MODELS", "models"),
                       help="models folder (default: $CVPIPE_MODELS or models)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=2)
    serve.add_argument("--read-timeout", type=float, metavar="SECONDS",
                       help="seconds a client has to send a whole request before it gets a 408 and is "
                            "disconnected (default: $CVPIPE_READ_TIMEOUT or 15)")
    serve.set_defaults(func=_cmd_serve)


def _add_data(sub):
    data = sub.add_parser("data", help="fetch and list datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    fetch = data_sub.add_parser("fetch", help="download a dataset into the cache and verify it")
    fetch.add_argument("name", choices=sorted(CHECKSUMS))
    fetch.add_argument("--cache-dir", help="default: $CVPIPE_DATA, else ~/.cache/cvpipe")
    fetch.add_argument("--mirror", help="base URL replacing the official host (also $CVPIPE_MIRROR)")
    fetch.set_defaults(func=_cmd_data_fetch)
    lst = data_sub.add_parser("list", help="show the datasets available on this machine")
    lst.set_defaults(func=_cmd_data_list)


def _add_extract(sub):
    ex = sub.add_parser("extract", help="batch feature extraction into features.npy")
    ex.add_argument("--dataset", required=True, help=DATASET_HELP)
    ex.add_argument("--split", default="train")
    ex.add_argument("--features", required=True, help=FEATURES_HELP)
    ex.add_argument("--out", required=True, help="output folder: a local or shared path, or an fsspec URL "
                    "(s3://bucket/prefix, with s3fs installed)")
    ex.add_argument("--engine", choices=ENGINES, default="local")
    ex.add_argument("--scheduler", help="Dask scheduler address, tcp://HOST:8786 (engine dask)")
    ex.add_argument("--n-jobs", type=int, default=-1, help="local processes or local Dask workers (-1: all cores)")
    ex.add_argument("--chunk-size", type=int, default=1000, help="images per task")
    ex.add_argument("--fit-split", default="train", help="split that learning extractors (BoVW) fit on")
    ex.add_argument("--fit-samples", type=int, default=FIT_SAMPLES,
                    help="images a learning extractor is fitted on, a seeded sample of the fit split")
    ex.add_argument("--seed", type=int, default=0, help="seed of that sample")
    ex.add_argument("--size", type=_size,
                    help="image files only: resize every image to SIZE or HxW (default: the most common size in a "
                         "seeded sample of the files)")
    ex.add_argument("--mode", choices=("L", "RGB"), help="image files only: color mode (default: L if every "
                    "sampled image is grayscale)")
    ex.add_argument("--overwrite", action="store_true", help="replace a different job found in --out")
    ex.set_defaults(func=_cmd_extract)


def build_parser():
    """The argument parser of ``cvpipe``."""
    parser = argparse.ArgumentParser(prog="cvpipe", description="A classic computer-vision pipeline.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_data(sub)
    _add_extract(sub)
    _add_workflows(sub)
    _add_serve(sub)
    demo = sub.add_parser("demo", help="train the default model if missing, then serve it")
    demo.add_argument("--models", default="models")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--workers", type=int, default=2)
    demo.add_argument("--no-fetch", action="store_true", help="do not try to download Fashion-MNIST")
    demo.add_argument("--no-serve", action="store_true", help="prepare only; do not start the server")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv=None):
    """Entry point of the ``cvpipe`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except ExtractionError as exc:
        print(f"cvpipe: error: {exc}", file=sys.stderr)
        return 1
    except (DatasetError, ArtifactError, ImageError, ValueError, OSError, RuntimeError) as exc:
        # OSError: a path that cannot be used (not a folder, no permission, disk full), said as the OS says it
        print(f"cvpipe: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
