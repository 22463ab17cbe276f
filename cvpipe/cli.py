"""The ``cvpipe`` command line (console script ``cvpipe``, or ``python -m cvpipe``).

Each sub-command lives in a small ``_cmd_*`` function; errors a user can fix (bad
input, missing files, a bad config) end with one line, ``cvpipe: error: ...``, and exit
status 2, never a traceback; a job that ran and failed part-way with status 1. Option
values are checked while parsing (:mod:`cvpipe.parsing`), specs and config files
before any data is read (:mod:`cvpipe.config`). Progress bars go to stderr, and only
when it is a terminal and ``-q`` is not given.

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
from cvpipe.batch_predict import CHUNK_SIZE, FORMATS
from cvpipe.commands import evaluate, predict, random_search_on_dataset, read_config, report, train, train_on_features
from cvpipe.config import (
    ServiceConfig,
    TrainConfig,
    check_classifier,
    check_features,
    read_document,
    service_options,
    validate,
)
from cvpipe.demo import prepare_demo
from cvpipe.parsing import Parser, UsageError, add_common_options, choice_list, int_list, int_type, positive_float
from pipeline._io import format_json, write_json
from pipeline.data import NAMED_DATASETS, DatasetError, ImageError, available_datasets, fetch_dataset
from pipeline.data.fetch import CHECKSUMS
from pipeline.jobs import ENGINES, FIT_SAMPLES, ExtractionError, OutputFolderError, run_extraction
from pipeline.model import ArtifactError
from pipeline.model.card import REPORT_SUFFIX, format_card, read_card
from pipeline.model.spec import names
from pipeline.selection import cv_knn_on_dataset, parse_space
from pipeline.version import package_version
from service.server import serve

logger = logging.getLogger("cvpipe")
FEATURES_HELP = ("feature spec such as 'hog:pixels_per_cell=7x7,color_hist:bins=16', or a JSON/YAML file; "
                 f"extractors: {', '.join(names('features'))}")
DATASET_HELP = (f"{', '.join(NAMED_DATASETS)}, an image folder, a .npz file, a folder of IDX files, a CSV listing "
                "of path,label (local paths or fsspec URLs) or a folder of WebDataset .tar shards")
CLASSIFIER_HELP = f"classifier spec such as 'net:hidden_sizes=256'; classifiers: {', '.join(names('classifier'))}"
POSITIVE = int_type(1)
SEED = int_type(0)
N_JOBS = int_type(1, also=(-1,), what="an integer >= 1, or -1 for every core")
PORT = int_type(0, 65535)
SERVE_FLAGS = ("models", "host", "port", "workers", "read_timeout")  # serve's flags, which override --config
PREDICT_DESCRIPTION = """\
One row per image, in the order of the PATHs (a folder's files sorted by path), written
and flushed a chunk at a time. CSV columns: path, label, class_index, score, label_2,
score_2, ... label_K, score_K, score_kind, error. JSON Lines: {"path", "label",
"class_index", "score", "score_kind", "top_k": [...], "error"}. A file that cannot be
predicted (missing, corrupt, not an image) is a row with its error; files of a folder
without an image extension, and hidden ones, are skipped and counted in a warning.
Exit status: 0 every image predicted, 1 some rows are errors, 2 a usage error.

examples:
  cvpipe predict models/default runs/demo/sample.png
  cvpipe predict models/default photos/ 'more/**/*.png' --output predictions.csv
  cvpipe predict models/default photos/ --format jsonl --top-k 3 | jq -r .label
"""


def _print_json(obj):
    sys.stdout.write(format_json(obj) + "\n")


def _cmd_data_fetch(args):
    path = fetch_dataset(args.name, cache_dir=args.cache_dir, base_url=args.mirror,
                         progress=args.progress)
    _print_json({"dataset": args.name, "path": str(path)})


def _cmd_data_list(args):
    _print_json(available_datasets())


def _cmd_extract(args):
    check_features(args.features)
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
        progress=args.progress,
        overwrite=args.overwrite,
    )
    _print_json({k: manifest[k] for k in ("dataset", "n_features", "files", "timings", "engine")})


def _cmd_demo(args):
    if Path(args.models).exists() and not Path(args.models).is_dir():  # found before a model is trained
        raise NotADirectoryError(f"--models {args.models} exists and is not a folder")
    summary = prepare_demo(args.models, fetch=not args.no_fetch, progress=args.progress)
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


def _space(text):
    try:
        parse_space(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _cmd_cv_knn(args):
    check_features(args.features)
    result = cv_knn_on_dataset(args.dataset, args.features, args.limit, split=args.split, ks=args.k,
                               metrics=args.metric, weights=args.weights,
                               n_folds=args.folds, seed=args.seed, device=args.device, progress=args.progress)
    if args.json:
        result.to_json(args.json)
    if args.plot:
        from cvpipe.reports import plot_knn_cv  # matplotlib: the optional "plot" extra

        plot_knn_cv(result, args.plot)
    print(result.format_table())


def _cmd_search(args):
    check_features(args.features)
    check_classifier(args.classifier)
    doc = random_search_on_dataset(args.dataset, args.features, args.classifier, args.space, limit=args.limit,
                                   seed=args.seed, trials=args.trials, stages=args.stages, folds=args.folds,
                                   n_jobs=args.n_jobs, scheduler=args.scheduler, progress=args.progress)
    if args.json:
        write_json(args.json, doc)
    _print_json({"best": doc["best"], "n_trials": len(doc["trials"])})


def _print_training(summary):
    """A training summary without its per-class reports (``cvpipe info MODEL`` shows them)."""
    metrics = {k: v for k, v in summary["metrics"].items() if not k.endswith(REPORT_SUFFIX)}
    _print_json(summary | {"metrics": metrics})


def _cmd_train(args):
    for key, check in (("features", check_features), ("classifier", check_classifier)):
        if getattr(args, key) is not None:
            check(getattr(args, key))  # before any data is read; the message as fit would say it
    if args.from_features:
        flags = {"config": "--config", "features": "--features", "limit": "--limit", "search": "--search",
                 "scaler": "--no-scaler"}
        given = [flag for key, flag in flags.items() if getattr(args, key) is not None]
        if given or not args.classifier or not args.out:
            raise ValueError(f"train --from-features takes --classifier and --out (required), --seed and --dataset "
                             f"(to score its test split); got {', '.join(given) or 'no --classifier or --out'}")
        _print_training(train_on_features(args.from_features, args.classifier, args.out, dataset=args.dataset,
                                          seed=args.seed or 0, progress=args.progress, command=args.command_line,
                                          overwrite=args.overwrite))
        return
    config = read_config(args.config) if args.config else {}
    for key in ("dataset", "features", "classifier", "limit", "out", "seed", "scaler"):  # a flag overrides the file
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    missing = [k for k in ("dataset", "features", "classifier", "out") if not config.get(k)]
    if missing:
        raise ValueError(f"train needs {', '.join('--' + m for m in missing)} (or a --config that has them)")
    if args.search:
        config["search"] = {"space": args.search, "trials": args.trials, "stages": args.stages, "folds": args.folds}
    # the resolved config (defaults filled in) is what train() records with the model
    config = validate(TrainConfig, config, args.config or "train")
    _print_training(train(n_jobs=args.n_jobs, scheduler=args.scheduler, progress=args.progress,
                          command=args.command_line, overwrite=args.overwrite, **config))


def _cmd_evaluate(args):
    result = evaluate(args.model, args.dataset, args.split, progress=args.progress)
    _print_json({k: v for k, v in result.items() if k != "confusion_matrix"} | {
        "confusion_matrix": [" ".join(f"{c:5d}" for c in row) for row in result["confusion_matrix"]]})


def _cmd_predict(args):
    try:
        summary = predict(args.model, args.paths, args.output, fmt=args.format, top_k=args.top_k,
                          chunk_size=args.chunk_size, overwrite=args.overwrite, progress=args.progress)
    except BrokenPipeError:
        if args.output not in (None, "-"):
            raise
        # the reader of the rows went away (`| head`): stop quietly, as shell tools do; devnull
        # takes standard output so that Python's flush at exit does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    if summary["output"] == "-":  # standard output holds the rows
        logger.info("predicted %d of %d images in %.1f s", summary["n_predicted"], summary["n_images"],
                    summary["seconds"])
    else:
        _print_json(summary)
    if summary["n_failed"]:
        print(f"cvpipe: error: {summary['n_failed']} of {summary['n_images']} images could not be predicted "
              "(their rows' error says why)", file=sys.stderr)
        return 1
    return 0


def _cmd_report(args):
    _print_json(report(args.model, args.out or Path(args.model) / "report", args.dataset, args.split,
                       progress=args.progress))


def _add_workflows(sub):
    cv = sub.add_parser("cv", help="cross-validate hyperparameters")
    cv_sub = cv.add_subparsers(dest="cv_command", required=True)
    knn = cv_sub.add_parser("knn", help="cross-validate k and the distance metric of kNN")
    knn.add_argument("--dataset", required=True, help=DATASET_HELP)
    knn.add_argument("--split", default="train", help="split to cross-validate on")
    knn.add_argument("--limit", type=POSITIVE, help="a stratified subset of this many images (default: all)")
    knn.add_argument("--features", default="raw", help=FEATURES_HELP)
    knn.add_argument("--k", type=int_list(1), default="1,3,5,8,10,12,15,20,50,100",
                     help="comma-separated numbers of neighbors to try")
    knn.add_argument("--metric", type=choice_list(METRICS), default=",".join(METRICS),
                     help=f"comma-separated distances to try, of {', '.join(METRICS)}")
    knn.add_argument("--weights", default="uniform", choices=WEIGHTS, help="how the k neighbors vote")
    knn.add_argument("--folds", type=int_type(2), default=5, help="stratified folds")
    knn.add_argument("--seed", type=SEED, default=0, help="seed of the subset and of the folds")
    knn.add_argument("--device", default="auto", choices=DEVICES, help="where the distances are computed")
    knn.add_argument("--json", help="write every fold's accuracy here (default: not written)")
    knn.add_argument("--plot", help="write cs231n's accuracy-against-k plot here, a PNG (default: not drawn)")
    knn.set_defaults(func=_cmd_cv_knn)

    def search_args(p, required):
        p.add_argument("--search" if not required else "--space", required=required, type=_space,
                       help="space such as 'learning_rate=log:1e-4:1e-1,reg=log:1e-6:1e-2'"
                            + ("" if required else " (default: no search, the classifier's parameters as given)"))
        p.add_argument("--trials", type=POSITIVE, default=10,
                       help="settings tried in EACH stage: --trials 10 --stages 2 trains 20 settings")
        p.add_argument("--stages", type=POSITIVE, default=2,
                       help="stages of the search: the first coarse, each next one narrowed around the best so far")
        p.add_argument("--folds", type=int_type(2, also=(0,), what="0 (a validation hold-out) or an integer >= 2"),
                       default=0, help="0: score each setting on a validation hold-out; k >= 2: by k-fold CV")
        p.add_argument("--n-jobs", type=N_JOBS, default=1, help="trials run at once (-1: one per core)")
        p.add_argument("--scheduler", help="Dask scheduler address for the trials (default: local, joblib)")
        p.add_argument("--seed", type=SEED, default=0 if required else None,
                       help="seed of the subset, the search and the classifier"
                            + ("" if required else " (default: the --config file's seed, else 0)"))

    search = sub.add_parser("search", help="coarse-to-fine random search of classifier hyperparameters")
    search.add_argument("--dataset", required=True, help=DATASET_HELP)
    search.add_argument("--features", required=True, help=FEATURES_HELP)
    search.add_argument("--classifier", required=True, help=CLASSIFIER_HELP)
    search.add_argument("--limit", type=POSITIVE, help="a stratified subset of this many images (default: all)")
    search.add_argument("--json", help="write the table of every trial here (default: not written)")
    search_args(search, required=True)
    search.set_defaults(func=_cmd_search)

    train = sub.add_parser("train", help="train a pipeline and save it as a model folder")
    train.add_argument("--config", help="YAML/JSON file with any of " + ", ".join(TrainConfig.model_fields)
                       + "; a flag given overrides the file's key (default: none, flags only)")
    train.add_argument("--from-features", metavar="DIR",
                       help="train on the output folder of 'cvpipe extract' (memory-mapped, in blocks); the model "
                            "uses that job's extractor; --dataset then only names the test split to score")
    train.add_argument("--dataset", help=DATASET_HELP)
    train.add_argument("--features", help=FEATURES_HELP)
    train.add_argument("--classifier", help=CLASSIFIER_HELP)
    train.add_argument("--limit", type=POSITIVE, help="a stratified subset of this many images (default: all)")
    train.add_argument("--out", help="model folder to write, e.g. models/NAME (default: the --config file's out; "
                                     "one of the two is required)")
    train.add_argument("--no-scaler", dest="scaler", action="store_const", const=False,
                       help="give the classifier the features as they are, not standardized (default: standardized; "
                            "a config's 'scaler: false')")
    train.add_argument("--overwrite", action="store_true", help="replace the model already in --out")
    search_args(train, required=False)
    train.set_defaults(func=_cmd_train)

    ev = sub.add_parser("evaluate", help="accuracy and confusion matrix of a saved model")
    ev.add_argument("model", help="a saved model folder, e.g. models/default")
    ev.add_argument("--dataset", required=True, help=DATASET_HELP)
    ev.add_argument("--split", default="test", help="split to score")
    ev.set_defaults(func=_cmd_evaluate)

    pr = sub.add_parser("predict", help="top classes of image files, folders and glob patterns (CSV or JSON Lines)",
                        description=PREDICT_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    pr.add_argument("model", help="a saved model folder, e.g. models/default")
    pr.add_argument("paths", nargs="+", metavar="PATH",
                    help="image files, folders (walked recursively: the files with an image extension) and quoted "
                         "glob patterns such as 'photos/**/*.jpg'")
    pr.add_argument("-o", "--output", metavar="FILE",
                    help="write the rows here, a .csv or .jsonl file (default: standard output)")
    pr.add_argument("--format", choices=FORMATS,
                    help="format of the rows (default: from --output's extension; csv on standard output)")
    pr.add_argument("--top-k", type=int, metavar="K",
                    help="classes listed per image, 1 to the model's number of classes (default: 5, or all if fewer)")
    pr.add_argument("--chunk-size", type=int, default=CHUNK_SIZE, metavar="N",
                    help=f"images decoded and predicted at a time (default: {CHUNK_SIZE})")
    pr.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    pr.set_defaults(func=_cmd_predict)

    rep = sub.add_parser("report", help="plots of a saved model (PNG)")
    rep.add_argument("model", help="a saved model folder, e.g. models/default")
    rep.add_argument("--dataset", help="adds the plots that need data, such as the confusion matrix "
                                       "(default: none, the model's own plots only)")
    rep.add_argument("--split", default="test", help="split of --dataset to plot")
    rep.add_argument("--out", help="folder for the plots (default: MODEL/report)")
    rep.set_defaults(func=_cmd_report)


INFO_DESCRIPTION = """\
Print a saved model's card, from its manifest: name, classes, input, pipeline steps, the
training and test data (source, split, size, fingerprint), the training config and command
line, the metrics with per-class precision, recall and F1, library versions, creation time
and sha256. The model is loaded first: a missing or damaged one is an error (exit status 2).
A model saved before cvpipe recorded provenance says so.

examples:
  cvpipe info models/default
  cvpipe info models/default --json | jq .metrics.test_classification_report
"""


def _cmd_info(args):
    card = read_card(args.model)
    if args.json:
        _print_json(card)
    else:
        sys.stdout.write(format_card(card))


def _add_info(sub):
    info = sub.add_parser("info", help="a saved model's card: classes, input, steps, data, config, metrics, versions",
                          description=INFO_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    info.add_argument("model", help="a saved model folder, e.g. models/default")
    info.add_argument("--json", action="store_true", help="print the card as JSON, for scripts (default: text)")
    info.set_defaults(func=_cmd_info)


def _cmd_serve(args):
    config = validate(ServiceConfig, read_document(args.config), args.config) if args.config else {}
    config = {**config, **{k: getattr(args, k) for k in SERVE_FLAGS if getattr(args, k) is not None}}
    defaults = {"models": os.environ.get("CVPIPE_MODELS") or "models", "host": "127.0.0.1", "port": 8000,
                "workers": 2}
    config = {**config, **{k: v for k, v in defaults.items() if config.get(k) is None}}
    options = service_options(config)
    serve(config["models"], host=config["host"], port=config["port"], workers=config["workers"], **options)


def _add_serve(sub):
    serve = sub.add_parser("serve", help="run the prediction service under gunicorn")
    serve.add_argument("--config", metavar="FILE",
                       help="YAML/JSON file of service settings: " + ", ".join(ServiceConfig.model_fields)
                            + " (the app's CVPIPE_* settings in lower case); a flag given overrides the file, the "
                              "file the environment (default: none)")
    serve.add_argument("--models", help="models folder (default: the --config file's, else $CVPIPE_MODELS, else "
                                        "models)")
    serve.add_argument("--host", help="address to listen on (default: the --config file's, else 127.0.0.1)")
    serve.add_argument("--port", type=PORT, help="port to listen on (default: the --config file's, else 8000)")
    serve.add_argument("--workers", type=POSITIVE,
                       help="worker processes (default: the --config file's, else 2)")
    serve.add_argument("--read-timeout", type=positive_float, metavar="SECONDS",
                       help="seconds a client has to send a whole request before it gets a 408 and is "
                            "disconnected (default: the --config file's, else $CVPIPE_READ_TIMEOUT, else 15)")
    serve.set_defaults(func=_cmd_serve)


def _add_data(sub):
    data = sub.add_parser("data", help="fetch and list datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    fetch = data_sub.add_parser("fetch", help="download a dataset into the cache and verify it")
    fetch.add_argument("name", choices=sorted(CHECKSUMS), help="the dataset to download")
    fetch.add_argument("--cache-dir", help="folder to download into (default: $CVPIPE_DATA, else ~/.cache/cvpipe)")
    fetch.add_argument("--mirror", help="base URL replacing the official host (default: $CVPIPE_MIRROR, else the "
                                        "official host)")
    fetch.set_defaults(func=_cmd_data_fetch)
    lst = data_sub.add_parser("list", help="show the datasets available on this machine")
    lst.set_defaults(func=_cmd_data_list)


def _add_extract(sub):
    ex = sub.add_parser("extract", help="batch feature extraction into features.npy")
    ex.add_argument("--dataset", required=True, help=DATASET_HELP)
    ex.add_argument("--split", default="train", help="split to extract")
    ex.add_argument("--features", required=True, help=FEATURES_HELP)
    ex.add_argument("--out", required=True, help="output folder: a local or shared path, or an fsspec URL "
                    "(s3://bucket/prefix, with s3fs installed)")
    ex.add_argument("--engine", choices=ENGINES, default="local", help="local processes, or a Dask cluster")
    ex.add_argument("--scheduler", help="Dask scheduler address, tcp://HOST:8786, for --engine dask (default: a "
                                        "local Dask cluster for the job)")
    ex.add_argument("--n-jobs", type=N_JOBS, default=-1,
                    help="local processes or local Dask workers (-1: one per core)")
    ex.add_argument("--chunk-size", type=POSITIVE, default=1000, help="images per task")
    ex.add_argument("--fit-split", default="train", help="split that learning extractors (BoVW) fit on")
    ex.add_argument("--fit-samples", type=POSITIVE, default=FIT_SAMPLES,
                    help="images a learning extractor is fitted on, a seeded sample of the fit split")
    ex.add_argument("--seed", type=SEED, default=0, help="seed of that sample")
    ex.add_argument("--size", type=_size,
                    help="image files only: resize every image to SIZE or HxW (default: the most common size in a "
                         "seeded sample of the files)")
    ex.add_argument("--mode", choices=("L", "RGB"), help="image files only: color mode (default: L if every "
                    "sampled image is grayscale)")
    ex.add_argument("--overwrite", action="store_true", help="replace a different job found in --out (a rerun of "
                                                             "the same job resumes it)")
    ex.set_defaults(func=_cmd_extract)


def build_parser():
    """The argument parser of ``cvpipe``."""
    parser = Parser(prog="cvpipe", description="A classic computer-vision pipeline: features, classifiers, "
                    "cross-validation,\nsaved models and a prediction service.",
                    epilog="examples:\n  cvpipe demo\n  cvpipe train --help\n  cvpipe -q predict models/default "
                           "runs/demo/sample.png")
    add_common_options(parser)
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_data(sub)
    _add_extract(sub)
    _add_workflows(sub)
    _add_info(sub)
    _add_serve(sub)
    demo = sub.add_parser("demo", help="train the default model if missing, then serve it")
    demo.add_argument("--models", default="models", help="models folder; the model is MODELS/default")
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on")
    demo.add_argument("--port", type=PORT, default=8000, help="port to listen on")
    demo.add_argument("--workers", type=POSITIVE, default=2, help="worker processes")
    demo.add_argument("--no-fetch", action="store_true", help="do not try to download Fashion-MNIST")
    demo.add_argument("--no-serve", action="store_true", help="prepare only; do not start the server")
    demo.set_defaults(func=_cmd_demo)
    return parser


def _say_error(exc):
    """``cvpipe: error: ...`` on stderr, on one line whatever the message held."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    print(f"cvpipe: error: {message}", file=sys.stderr)


def main(argv=None):
    """Entry point of the ``cvpipe`` console script; returns the exit status.

    0: done (``--help`` and ``--version`` too); 1: a job ran and some of its items failed;
    2: a usage error, said in one line on stderr (``cvpipe: error: ...``), never a
    traceback; 130: interrupted (Ctrl-C).
    """
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        _say_error(exc)
        return 2
    except SystemExit as exc:  # --help and --version print, then exit
        return exc.code if isinstance(exc.code, int) else 0
    # bars only for a person watching: -q, or a stderr that is a file or a pipe, turns them off
    args.progress = not args.quiet and sys.stderr.isatty()
    args.command_line = ["cvpipe", *(sys.argv[1:] if argv is None else argv)]  # what a trained model records
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        status = args.func(args)  # None, or 1 where a command ran and some of its items failed
    except ExtractionError as exc:
        _say_error(exc)
        return 2 if isinstance(exc, OutputFolderError) else 1  # a refused --out is a usage mistake
    except (DatasetError, ArtifactError, ImageError, ValueError, OSError, RuntimeError) as exc:
        # ValueError: a bad spec, config (ConfigError) or value; OSError: a path that cannot be used
        # (missing, not a folder, no permission, disk full), said as the OS says it
        _say_error(exc)
        return 2
    except KeyboardInterrupt:
        print("cvpipe: interrupted", file=sys.stderr)
        return 130
    return status or 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
