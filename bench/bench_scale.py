"""Batch extraction at scale: the coordinator's memory, scaling over workers, and a run
across (namespaced) hosts.

    python bench/bench_scale.py [--work DIR] [--parts memory,scaling,multihost,memlimit]
                                [--folder-sizes 25000,200000] [--copies 20] [--rounds 1]
                                [--memlimit-mb 1024]

Everything runs the real job (:func:`pipeline.jobs.run_extraction`, HOG with 7x7 cells)
in a fresh process, as ``cvpipe extract`` does, and reads what it did from its manifest
(each worker's images, seconds and peak memory) and from ``getrusage``.

- **memory**: image folders of 64x64 RGB JPEGs (10 classes, generated once into
  ``--work``) at two sizes, one 8x the other; the local engine with 2 workers. Prints
  the coordinating process's peak RSS at each size and each worker's. Target: the
  coordinator's peak grows by at most 50 MB between the two sizes.
- **scaling**: Fashion-MNIST x ``--copies`` (train + test, 1.4 M images at 20 copies,
  written once as IDX files and memory-mapped) and the larger image folder: images/s
  of the job with 1 and 2 workers of a local Dask cluster and with the local engine
  (2 workers), beside the in-process ``HOG.transform`` rate of one core (the ceiling,
  measured before and after each job). The job's rate counts from the first task sent
  (the workers' start-up included); the steady rate from the first chunk's start to the
  last one's end. A worker's rate is its images over the seconds it spent on its chunks
  (reading, transforming, hashing and writing them). Targets: 2 workers >= 1.8x 1
  worker (steady rates); each worker >= 85% of the one-core ceiling (IDX source).
- **memlimit**: the larger image folder extracted and then trained on (``cvpipe extract``,
  ``cvpipe train --from-features``, softmax) inside a memory cgroup whose limit is below
  the size of the features; beside it, ``cvpipe train`` on the same folder, which loads
  every image into memory, in the same cgroup. Needs root and the cgroup v1 memory
  controller or cgroup v2. Prints each command's status and its peak memory.
- **multihost**: a Dask scheduler and the coordinator in one network namespace, two
  workers in another (``tests/hosts.py``; needs root and iproute2), the smaller image
  folder: images/s and the bytes that crossed the virtual network per image (the
  kernel's counters of the veth pair).

The machine is shared and noisy: the job's rates are measured in the same run as the
ceiling, and ``--rounds`` repeats each configuration (medians are printed).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from _common import machine_line, verdict

REPO = Path(__file__).resolve().parents[1]
SPEC = "hog:pixels_per_cell=7"
#: One BLAS/OpenMP thread per process: the workers are the parallelism.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

#: Runs one job in a fresh process and prints what it did as JSON.
JOB = """
import json, resource, sys, time
from pipeline.jobs import run_extraction
args = json.loads(sys.argv[1])
t0 = time.perf_counter()
manifest = run_extraction(progress=False, **args)
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall_s": time.perf_counter() - t0, "timings": manifest["timings"],
                  "coordinator_cpu_s": usage.ru_utime + usage.ru_stime,
                  "workers": manifest["workers"], "n_images": manifest["dataset"]["n_images"],
                  "coordinator_max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "children_max_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""

#: Two one-core, in-process rates over the first N images of a dataset: HOG.transform on
#: images in memory (the ceiling of the brief), and the job's own chunk function
#: (pipeline.jobs.chunk.extract_chunk: read the rows, HOG, hash, write) into a folder
#: beside the jobs' output, what a worker would do with no engine around it.
CEILING = """
import json, shutil, sys, tempfile, time
import numpy as np
from features import HOG
from pipeline.data import open_dataset
from pipeline.jobs.chunk import extract_chunk
from pipeline.model import save_extractor
data = open_dataset(sys.argv[1])
n, chunk = min(len(data), int(sys.argv[2])), int(sys.argv[4])
images = np.concatenate([data.read(s, min(n, s + 5000)).images for s in range(0, n, 5000)])
hog = HOG(pixels_per_cell=(7, 7)).fit(images[:8])
hog.transform(images[:1000])
rates = []
for _ in range(3):
    t0 = time.perf_counter()
    for s in range(0, n, 10000):
        hog.transform(images[s:s + 10000])
    rates.append(n / (time.perf_counter() - t0))
folder = tempfile.mkdtemp(dir=sys.argv[3])
try:
    sha = save_extractor(hog, folder + "/extractor")
    tasks = [{"index": i, "rows": [s, min(n, s + chunk)], "data": data.task(s, min(n, s + chunk)),
              "extractor": folder + "/extractor", "extractor_sha256": sha, "out": folder}
             for i, s in enumerate(range(0, n, chunk))]
    extract_chunk(tasks[0])
    t0 = time.perf_counter()
    for task in tasks:
        assert "error" not in extract_chunk(task)
    chunk_rate = n / (time.perf_counter() - t0)
finally:
    shutil.rmtree(folder)
print(json.dumps({"rate": sorted(rates)[1], "chunk_rate": chunk_rate}))
"""


# ----------------------------------------------------------------------------- data
def _write_jpegs(args):
    """Write images ``start..stop`` of a generated folder (one process of the pool)."""
    from PIL import Image

    folder, start, stop = args
    for i in range(start, stop):
        rng = np.random.default_rng(i)
        label = i % 10
        # Smooth noise (8x8 upsampled) with a class-dependent stripe: JPEGs of realistic size.
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        image = np.asarray(Image.fromarray(small).resize((64, 64), Image.BILINEAR)).copy()
        image[:, 6 * label:6 * label + 6] = 255
        Image.fromarray(image).save(folder / f"class{label}" / f"{i:07d}.jpg", quality=90)


def image_folder(work, n):
    """A folder of ``n`` 64x64 RGB JPEGs in 10 class folders, generated once."""
    folder = work / f"jpegs-{n}"
    if (folder / ".complete").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    for label in range(10):
        (folder / f"class{label}").mkdir(parents=True)
    t0 = time.perf_counter()
    step = 5000
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(_write_jpegs, [(folder, s, min(n, s + step)) for s in range(0, n, step)]))
    (folder / ".complete").write_text("")
    print(f"generated {n} JPEGs in {folder} in {time.perf_counter() - t0:.0f} s")
    return folder


def fashion_copies(work, copies):
    """Fashion-MNIST's train and test images, ``copies`` times, as uncompressed IDX files (the
    "train" split of the folder), written once."""
    from pipeline.data import load_dataset

    folder = work / f"fashion-x{copies}"
    if (folder / ".complete").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    train, test = load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
    images = np.concatenate([train.images, test.images])
    labels = np.concatenate([train.labels, test.labels]).astype(np.uint8)
    n = len(images) * copies
    with open(folder / "train-images-idx3-ubyte", "wb") as fh:
        fh.write(np.array([0x00000803, n, 28, 28], dtype=">u4").tobytes())
        for _ in range(copies):
            fh.write(images.tobytes())
    with open(folder / "train-labels-idx1-ubyte", "wb") as fh:
        fh.write(np.array([0x00000801, n], dtype=">u4").tobytes())
        for _ in range(copies):
            fh.write(labels.tobytes())
    (folder / ".complete").write_text("")
    print(f"wrote {n} images of Fashion-MNIST x{copies} to {folder}")
    return folder


# ----------------------------------------------------------------------------- runs
def run_job(dataset, out, *, engine="local", n_jobs=2, chunk_size=1000, scheduler=None, host=None, timeout=3600):
    """Run one job in a fresh process (in ``host`` when given); its summary as a dict."""
    shutil.rmtree(out, ignore_errors=True)
    args = {"dataset": str(dataset), "features": SPEC, "out_dir": str(out), "engine": engine, "n_jobs": n_jobs,
            "chunk_size": chunk_size, "scheduler": scheduler}
    cmd = [sys.executable, "-c", JOB, json.dumps(args)]
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(REPO)}
    done = (host.run(cmd, timeout=timeout, env=env, cwd=REPO) if host is not None
            else subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO))
    if done.returncode != 0:
        raise RuntimeError(f"the job failed ({done.returncode}):\n{done.stderr[-3000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    shutil.rmtree(out, ignore_errors=True)  # GBs of features: nothing reads them here
    return summary


def ceiling(dataset, out, chunk_size, n=100_000):
    """``{"rate", "chunk_rate"}``: see ``CEILING``."""
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(REPO)}
    out.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-c", CEILING, str(dataset), str(n), str(out.parent), str(chunk_size)],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"the ceiling run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def worker_rates(summary):
    return [w["images"] / w["seconds"] for w in summary["workers"] if w["seconds"] > 0]


def job_rate(summary):
    return summary["n_images"] / summary["timings"]["transform_s"]


def median(values):
    return statistics.median(values) if values else float("nan")


# ----------------------------------------------------------------------------- parts
def part_memory(work, sizes, rounds):
    print(f"\n== coordinator memory: local engine, 2 workers, chunks of 1000, {SPEC}")
    print(f"{'images':>8} {'coordinator MB':>15} {'workers MB (each)':>30} {'images/s':>9}")
    peaks = {}
    for n in sizes:
        folder = image_folder(work, n)
        runs = [run_job(folder, work / "out", engine="local", n_jobs=2, chunk_size=1000) for _ in range(rounds)]
        peaks[n] = median([r["coordinator_max_rss_mb"] for r in runs])
        each = ", ".join(f"{w['max_rss_mb']:.0f}" for w in runs[-1]["workers"])
        print(f"{n:>8} {peaks[n]:>15.1f} {each:>30} {median([job_rate(r) for r in runs]):>9.0f}")
    small, large = min(sizes), max(sizes)
    growth = peaks[large] - peaks[small]
    print(f"coordinator growth {small} -> {large} images: {growth:+.1f} MB (target <= 50 MB: "
          f"{'met' if growth <= 50 else 'NOT met'})")


def steady_rate(summary):
    """Images over the time from the first chunk's start to the last chunk's end (the job's
    rate without the workers' start-up: spawning, importing, a local cluster's start)."""
    started = min(w["started"] for w in summary["workers"])
    finished = max(w["finished"] for w in summary["workers"])
    return summary["n_images"] / (finished - started)


def part_scaling(work, copies, folder_size, rounds, out, sources):
    sources = [(name, dataset, chunk_size) for name, dataset, chunk_size in
               (("IDX", "idx", 10_000), ("JPEG folder", "folder", 1000)) if dataset in sources]
    for name, kind, chunk_size in sources:
        dataset = fashion_copies(work, copies) if kind == "idx" else image_folder(work, folder_size)
        print(f"\n== scaling, {name} ({dataset.name}), {SPEC}, chunks of {chunk_size}, output in {out.parent}")
        print("ceilings, one core, in process, measured before and after each configuration: HOG.transform "
              "(hog) and the job's chunk function, extract_chunk (chunk)")
        print(f"{'configuration':>24} {'job img/s':>10} {'steady img/s':>13} {'per worker img/s':>18} "
              f"{'hog':>8} {'chunk':>8} {'of hog':>9} {'of chunk':>9} {'coord. CPU s':>12}")
        steady = {}
        for label, engine, n_jobs in (("dask, 1 worker", "dask", 1), ("dask, 2 workers", "dask", 2),
                                      ("local engine, 2 workers", "local", 2)):
            jobs, steadies, per_worker, tops, cpu = [], [], [], [], []
            for _ in range(rounds):
                tops.append(ceiling(dataset, out, chunk_size))
                run = run_job(dataset, out, engine=engine, n_jobs=n_jobs, chunk_size=chunk_size)
                tops.append(ceiling(dataset, out, chunk_size))
                jobs.append(job_rate(run))
                steadies.append(steady_rate(run))
                per_worker.append(sorted(worker_rates(run)))
                cpu.append(run["coordinator_cpu_s"])
            hog, chunk = median([t["rate"] for t in tops]), median([t["chunk_rate"] for t in tops])
            steady[label] = median(steadies)
            workers = [median(v) for v in zip(*per_worker)]
            print(f"{label:>24} {median(jobs):>10,.0f} {steady[label]:>13,.0f} "
                  f"{', '.join(f'{r:,.0f}' for r in workers):>18} {hog:>8,.0f} {chunk:>8,.0f} "
                  f"{', '.join(f'{r / hog:.0%}' for r in workers):>9} "
                  f"{', '.join(f'{r / chunk:.0%}' for r in workers):>9} {median(cpu):>12.1f}")
        ratio = steady["dask, 2 workers"] / steady["dask, 1 worker"]
        print(f"2 workers / 1 worker (steady): {ratio:.2f}x (target >= 1.8x: {verdict(ratio, 1.8)})")


def part_multihost(work, folder_size):
    sys.path.insert(0, str(REPO / "tests"))
    try:
        import hosts
    finally:
        sys.path.remove(str(REPO / "tests"))  # see tests/hosts.py: it would hide `pipeline` from spawned processes
    ok, reason = hosts.namespaces_available()
    if not ok:
        print(f"\n== multihost: skipped ({reason})")
        return
    folder = image_folder(work, folder_size)
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(REPO)}
    print(f"\n== multihost: scheduler + coordinator in namespace A, 2 workers in namespace B, {folder.name}")
    with tempfile.TemporaryDirectory() as tmp, hosts.namespaced_hosts(2) as (a, b):
        scheduler = f"tcp://{a.address}:8786"
        logs = open(Path(tmp) / "cluster.log", "wb")
        a.popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", a.address, "--port", "8786",
                 "--no-dashboard"], stdout=logs, stderr=subprocess.STDOUT, env=env)
        b.popen([sys.executable, "-m", "distributed.cli.dask_worker", scheduler, "--nworkers", "2", "--nthreads",
                 "1", "--host", b.address, "--no-dashboard", "--death-timeout", "60", "--local-directory",
                 str(Path(tmp) / "dask")], stdout=logs, stderr=subprocess.STDOUT, env=env)
        wait = ("from distributed import Client; import sys\n"
                "with Client(sys.argv[1], timeout=60) as c: c.wait_for_workers(2, timeout=60)")
        ready = a.run([sys.executable, "-c", wait, scheduler], timeout=120, env=env)
        if ready.returncode != 0:
            raise RuntimeError(f"the cluster did not come up: {ready.stderr[-2000:]}")
        before = b.counters()
        summary = run_job(folder, work / "out", engine="dask", scheduler=scheduler, chunk_size=1000, host=a)
        after = b.counters()
    sent, received = after["tx"] - before["tx"], after["rx"] - before["rx"]
    n = summary["n_images"]
    print(f"{n} images at {job_rate(summary):,.0f} images/s; the workers' host sent {sent:,} and received "
          f"{received:,} bytes: {(sent + received) / n:.1f} bytes per image crossed the network (pixels and "
          f"features stay on the shared filesystem: a 64x64 RGB JPEG here is about 2 KB, its features 9 KB)")
    print("workers: " + "; ".join(f"{w['images']} images in {w['seconds']:.1f} s, {w['max_rss_mb']:.0f} MB"
                                  for w in summary["workers"]))


def _memory_cgroup(limit_bytes):
    """A memory cgroup limited to ``limit_bytes`` (v2 where it has the memory controller, else
    v1): ``(prefix command, peak reader, cleanup)``, or None where none can be made."""
    name = f"cvpipe-bench-{os.getpid()}"
    v2, v1 = Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/memory")
    try:
        if (v2 / "cgroup.controllers").exists() and "memory" in (v2 / "cgroup.controllers").read_text().split():
            group = v2 / name
            group.mkdir()
            (group / "memory.max").write_text(str(limit_bytes))
            (group / "memory.swap.max").write_text("0")
            procs, peak = group / "cgroup.procs", group / "memory.peak"
        elif v1.is_dir():
            group = v1 / name
            group.mkdir()
            (group / "memory.limit_in_bytes").write_text(str(limit_bytes))
            procs, peak = group / "cgroup.procs", group / "memory.max_usage_in_bytes"
        else:
            return None
    except OSError as exc:
        print(f"no memory cgroup here ({exc})")
        return None

    def reset_peak():
        if peak.name == "memory.max_usage_in_bytes":
            peak.write_text("0")

    # The command joins the cgroup itself, then runs: every process it starts is in it too.
    prefix = ["sh", "-c", f'echo $$ > {procs} && exec "$@"', "sh"]
    return prefix, lambda: int(peak.read_text()), reset_peak, lambda: group.rmdir()


def part_memlimit(work, folder_size, limit_mb, timeout_s=900):
    folder = image_folder(work, folder_size)
    cgroup = _memory_cgroup(limit_mb * 2**20)
    if cgroup is None:
        print("\n== memlimit: skipped (needs root and a cgroup memory controller)")
        return
    prefix, peak, reset_peak, remove = cgroup
    out, model = work / "memlimit-features", work / "memlimit-model"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(model, ignore_errors=True)
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(REPO)}
    cli = [sys.executable, "-m", "cvpipe.cli", "-q"]
    commands = [
        ("cvpipe extract", cli + ["extract", "--dataset", str(folder), "--features", SPEC, "--out", str(out),
                                  "--n-jobs", "2", "--chunk-size", "1000"]),
        ("cvpipe train --from-features", cli + ["train", "--from-features", str(out), "--classifier",
                                                "softmax:n_epochs=3", "--out", str(model)]),
        # The same with every row of an epoch shuffled (a buffer larger than the data): mini-batches
        # of rows from anywhere in a file larger than the cgroup's memory.
        ("train --from-features, all rows", cli + ["train", "--from-features", str(out), "--classifier",
                                                   "softmax:n_epochs=3,shuffle_buffer=1000000000",
                                                   "--out", str(model) + "-rows"]),
        ("cvpipe train (in memory)", cli + ["train", "--dataset", str(folder), "--features", SPEC,
                                            "--classifier", "softmax:n_epochs=3", "--out", str(model) + "-mem"]),
    ]
    print(f"\n== memlimit: {folder.name} in a memory cgroup of {limit_mb} MB (no swap), {SPEC}")
    try:
        for label, cmd in commands:
            reset_peak()
            t0 = time.perf_counter()
            try:
                done = subprocess.run(prefix + cmd, capture_output=True, text=True, env=env, cwd=REPO,
                                      timeout=timeout_s)
            except subprocess.TimeoutExpired:
                print(f"{label:>32}: not finished in {timeout_s} s (stopped), peak {peak() / 2**20:,.0f} MB")
                continue
            seconds = time.perf_counter() - t0
            status = "ok" if done.returncode == 0 else f"FAILED (status {done.returncode}, " \
                f"{'killed: out of memory' if done.returncode in (-9, 137) else done.stderr.strip()[-200:]})"
            size = ""
            if label == "cvpipe extract" and (out / "features.npy").exists():
                size = f", features.npy {(out / 'features.npy').stat().st_size / 2**20:,.0f} MB"
            if "--from-features" in label and done.returncode == 0:
                size = f", of which training {json.loads(done.stdout)['metrics']['train_seconds']} s"
            print(f"{label:>32}: {status} in {seconds:.0f} s, peak {peak() / 2**20:,.0f} MB{size}")
    finally:
        remove()
        shutil.rmtree(out, ignore_errors=True)
        for scratch in work.glob(".cvpipe-train-*"):  # a training stopped at its timeout leaves its scratch file
            shutil.rmtree(scratch, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "cvpipe-bench-scale",
                        help="where the generated datasets are kept between runs (several GB)")
    parser.add_argument("--parts", default="memory,scaling,multihost,memlimit")
    parser.add_argument("--folder-sizes", default="25000,200000")
    parser.add_argument("--copies", type=int, default=20, help="copies of Fashion-MNIST (70,000 images each)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path, help="the jobs' output folder for part scaling (default: in --work); "
                        "e.g. /dev/shm/cvpipe-out to take the disk out of the measurement")
    parser.add_argument("--sources", default="idx,folder", help="part scaling: idx, folder or both")
    parser.add_argument("--memlimit-mb", type=int, default=1024, help="the memory cgroup's limit (part memlimit)")
    args = parser.parse_args()
    sizes = [int(v) for v in args.folder_sizes.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    print(machine_line())
    print(f"command: python bench/bench_scale.py {' '.join(sys.argv[1:])}")
    parts = args.parts.split(",")
    if "memory" in parts:
        part_memory(args.work, sizes, args.rounds)
    if "scaling" in parts:
        part_scaling(args.work, args.copies, max(sizes), args.rounds, args.out or args.work / "out",
                     args.sources.split(","))
    if "multihost" in parts:
        part_multihost(args.work, min(sizes))
    if "memlimit" in parts:
        part_memlimit(args.work, max(sizes), args.memlimit_mb)


if __name__ == "__main__":
    main()
