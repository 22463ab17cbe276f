"""The ``cvpipe`` command line.

Each sub-command lives in a small ``_cmd_*`` function; errors a user can fix (bad
input, missing files) end with ``cvpipe: error: ...`` and exit status 2, a job that
ran and failed part-way with status 1.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from pipeline.engines import ENGINES

logger = logging.getLogger("cvpipe")


def _print_json(obj):
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _cmd_data_fetch(args):
    from pipeline.fetch import fetch_dataset

    path = fetch_dataset(args.name, cache_dir=args.cache_dir, base_url=args.mirror,
                         progress=not args.quiet)
    _print_json({"dataset": args.name, "path": str(path)})


def _cmd_data_list(args):
    from pipeline.datasets import list_local_datasets

    _print_json(list_local_datasets())


def _cmd_extract(args):
    from pipeline.extract import run_extraction

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
        progress=not args.quiet,
        overwrite=args.overwrite,
    )
    _print_json({k: manifest[k] for k in ("dataset", "n_features", "files", "timings", "engine")})


def _cmd_demo(args):
    from pipeline.demo import run_demo

    summary = run_demo(out_dir=args.out, progress=not args.quiet)
    width = max(map(len, summary))
    print("cvpipe demo: batch feature extraction")
    for key, value in summary.items():
        print(f"  {key.replace('_', ' '):<{width}}  {value}")


def _add_data(sub):
    data = sub.add_parser("data", help="fetch and list datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    fetch = data_sub.add_parser("fetch", help="download a dataset into the cache and verify it")
    fetch.add_argument("name", choices=["fashion-mnist", "mnist", "cifar10"])
    fetch.add_argument("--cache-dir", help="default: $CVPIPE_DATA, else ~/.cache/cvpipe")
    fetch.add_argument("--mirror", help="base URL replacing the official host (also $CVPIPE_MIRROR)")
    fetch.set_defaults(func=_cmd_data_fetch)
    lst = data_sub.add_parser("list", help="show the datasets available on this machine")
    lst.set_defaults(func=_cmd_data_list)


def _add_extract(sub):
    ex = sub.add_parser("extract", help="batch feature extraction into features.npy")
    ex.add_argument("--dataset", required=True, help="fashion-mnist, mnist, cifar10, digits, a folder or a .npz")
    ex.add_argument("--split", default="train")
    ex.add_argument("--features", required=True,
                    help="spec such as 'hog:pixels_per_cell=7x7,color_hist:bins=16', or a JSON/YAML file")
    ex.add_argument("--out", required=True, help="output folder")
    ex.add_argument("--engine", choices=ENGINES, default="local")
    ex.add_argument("--scheduler", help="Dask scheduler address, tcp://HOST:8786 (engine dask)")
    ex.add_argument("--n-jobs", type=int, default=-1, help="local processes or local Dask workers (-1: all cores)")
    ex.add_argument("--chunk-size", type=int, default=1000, help="images per task")
    ex.add_argument("--fit-split", default="train", help="split that learning extractors (BoVW) fit on")
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
    demo = sub.add_parser("demo", help="extract features of the demo dataset and print a summary")
    demo.add_argument("--out", default="runs/demo")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv=None):
    """Entry point of the ``cvpipe`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    from pipeline.datasets import DatasetError
    from pipeline.extract import ExtractionError

    try:
        args.func(args)
    except ExtractionError as exc:
        print(f"cvpipe: error: {exc}", file=sys.stderr)
        return 1
    except (DatasetError, ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"cvpipe: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
