"""The prediction service under gunicorn: /predict against a bare hello endpoint, in one run.

    python bench/bench_service.py [--duration 10] [--rounds 3] [--concurrency 8,32] [--workers 2]
                                  [--threads 2] [--worker-class balanced] [--client auto|wrk|python]
                                  [--body multipart|raw] [--features SPEC] [--switch NAMES]
                                  [--peer] [--slow N]

A HOG (7x7 cells) + softmax model on 28x28 grayscale input (trained on 20,000
Fashion-MNIST training images; scikit-learn's digits resized to 28x28 when
Fashion-MNIST is missing) is served by one gunicorn configuration (the service's own
``service.gunicorn_conf``), with ``GET /hello`` added by ``bench/_service_wsgi.py``.
After a few seconds of unrecorded warm-up load, a load generator on 127.0.0.1 (Debian's
``wrk`` with a Lua script posting a multipart image, else a Python client with keep-alive
``http.client`` connections in threads) drives hello and /predict in turn, ``--rounds``
times for ``--duration`` s each at each concurrency (alternating, so that the shared
machine's drift hits both), and prints
for every run and for all rounds together requests/s, p50 and p99 latency and errors,
the CPU per request of the gunicorn workers ("srv us") and of the client ("cli us": wrk,
or this process's threads) from /proc and getrusage, how the client's connections were
spread over the workers halfway through (from /proc), and /predict's share of hello's
rate (and of hello's CPU per request, its less noisy twin).
Then one request with 64 images against 64 one-image requests (sequential, one
keep-alive connection, medians of 21 alternating tries): per-image throughput.

``--features`` names the model's extractors (default ``hog:pixels_per_cell=7x7``; ``make
demo``'s model is ``hog:pixels_per_cell=7x7,hog:pixels_per_cell=4x4``). ``--switch``
starts a second server whose workers switch the named shortcuts of the service path to
their other paths (``bench_shortcuts.py`` names them) and drives its /predict in the same
rounds, as "predict+sw": what each path is worth to a served request.

``--peer`` adds the peer a user would write instead (``bench/_peer_wsgi.py``: Flask,
skimage's HOG and a joblib scikit-learn pipeline, under gunicorn's stock gthread worker
with the same workers x threads) and prints cvpipe's rate over its. ``--slow N`` adds a
second cvpipe server that N slow connections hold open (headers at 1 byte/s, reopened
when dropped) and prints its /predict rate over the first's.

Targets: no errors; p99 <= 20 ms at concurrency 8; the 64-image request >= 10x the
per-image throughput of single requests. /predict's share of hello's rate is printed
for comparison between runs; it is not a target (the service is measured against a
peer service instead).
"""
from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
from _common import machine_line, verdict
from PIL import Image

from service.server import DEFAULT_THREADS, WORKER_CLASSES
from service.testing import connections_per_worker, start, stop, wait_until_ready, worker_pids

BENCH_DIR = Path(__file__).resolve().parent
N_BATCH = 64


# ------------------------------------------------------------------ the model and the bodies
def train_model(models_dir, features="hog:pixels_per_cell=7x7", peer_path=None):
    """Fit ``features`` + softmax on 28x28 images and save it as ``models_dir/default``; returns test images.
    With ``peer_path``, the peer's skimage + scikit-learn pipeline too (on 5,000 of the same images)."""
    from pipeline.data.datasets import DatasetNotFoundError, load_dataset
    from pipeline.model import ImagePipeline, save
    from pipeline.selection.knn_cv import stratified_subset

    try:
        train, test = load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
        train = train.subset(stratified_subset(train.labels, 20000, seed=0))
        source = "Fashion-MNIST (20,000 training images)"
    except DatasetNotFoundError:
        train, test = (_digits_28(load_dataset("digits", s)) for s in ("train", "test"))
        source = "scikit-learn digits resized to 28x28 (Fashion-MNIST not found)"
    t0 = time.perf_counter()
    model = ImagePipeline(features, "softmax:random_state=0")
    model.fit(train.images, train.labels, class_names=train.class_names)
    model.metrics_ = {"test_accuracy": float(model.score(test.images, test.labels))}
    save(model, Path(models_dir) / "default")
    if peer_path is not None:
        from _peer_wsgi import fit_peer

        fit_peer(train.images[:5000], train.labels[:5000], peer_path)
    print(f"model: {features} + softmax on {source}: fit in {time.perf_counter() - t0:.1f} s, "
          f"test accuracy {model.metrics_['test_accuracy']:.3f}")
    return test.images


def _digits_28(data):
    big = np.stack([np.asarray(Image.fromarray(im).resize((28, 28), Image.BILINEAR)) for im in data.images])
    return type(data)(big, data.labels, data.class_names, data.name, data.split, data.source)


def png_bytes(image):
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def multipart(pngs):
    """``(body, content_type)``: one ``image`` part per PNG."""
    boundary = "cvpipe-bench-" + uuid.uuid4().hex
    parts = []
    for i, data in enumerate(pngs):
        parts.append((f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{i}.png\"\r\n"
                      f"Content-Type: image/png\r\n\r\n").encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


# ------------------------------------------------------------------ load generators
WRK_LUA = r"""
local body_file, content_type = os.getenv("BENCH_BODY"), os.getenv("BENCH_CONTENT_TYPE")
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = content_type
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests": %d, "seconds": %.6f, "p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, ' ..
    '"errors": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3, e.connect + e.read + e.write + e.status + e.timeout,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


class SlowClients:
    """``n`` connections to ``base_url`` sending a request's headers at 1 byte/s, each opening
    a new one when the server drops it, until :meth:`stop` (run in a thread of their own)."""

    def __init__(self, base_url, n):
        import asyncio

        self._host, self._port = base_url.split("//", 1)[1].rsplit(":", 1)
        self._stop, self.opened = threading.Event(), 0
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main(n)), daemon=True)
        self._thread.start()

    async def _main(self, n):
        import asyncio

        await asyncio.gather(*(self._client() for _ in range(n)))

    async def _client(self):
        import asyncio

        trickle = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 4000 + b"\r\n\r\n"
        while not self._stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(self._host, int(self._port))
            except OSError:
                await asyncio.sleep(0.5)
                continue
            self.opened += 1
            try:
                for i in range(len(trickle)):
                    if self._stop.is_set():
                        break
                    writer.write(trickle[i:i + 1])
                    await writer.drain()
                    try:
                        if await asyncio.wait_for(reader.read(4096), timeout=1.0) == b"":
                            break  # dropped by the server (its read timeout)
                    except asyncio.TimeoutError:
                        pass
            except OSError:
                pass
            finally:
                writer.close()

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        return self.opened


def run_wrk(url, concurrency, duration, body=None, content_type=None, workdir=None):
    """One ``wrk`` run (one thread, ``concurrency`` keep-alive connections); returns the stats dict."""
    script = Path(workdir) / "bench.lua"
    script.write_text(WRK_LUA)
    env = dict(os.environ, BENCH_BODY="", BENCH_CONTENT_TYPE="")
    if body is not None:
        body_file = Path(workdir) / "body.bin"
        body_file.write_bytes(body)
        env.update(BENCH_BODY=str(body_file), BENCH_CONTENT_TYPE=content_type)
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "--timeout", "10s",
                          "-s", str(script), url], env=env, capture_output=True, text=True, timeout=duration + 60)
    line = next((s for s in out.stdout.splitlines() if s.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary (status {out.returncode}): {out.stdout[-500:]} {out.stderr[-500:]}")
    stats = json.loads(line[len("BENCHJSON "):])
    stats["rps"] = stats["requests"] / stats["seconds"]
    return stats


def run_python_client(url, concurrency, duration, body=None, content_type=None, workdir=None):
    """The same measurement with ``concurrency`` threads, each on one keep-alive connection."""
    host_port, path = url.split("//", 1)[1].split("/", 1)
    host, port = host_port.rsplit(":", 1)
    latencies, errors, lock = [], [0], threading.Lock()
    stop_at = time.perf_counter() + duration

    def client():
        conn, mine, bad = http.client.HTTPConnection(host, int(port), timeout=10), [], 0
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            try:
                if body is None:
                    conn.request("GET", "/" + path)
                else:
                    conn.request("POST", "/" + path, body=body, headers={"Content-Type": content_type})
                response = conn.getresponse()
                response.read()
                ok = response.status < 400
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
            if ok:
                mine.append(time.perf_counter() - t0)
            else:
                bad += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    t_start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration + 30)
    seconds = time.perf_counter() - t_start
    ms = np.sort(np.array(latencies)) * 1e3 if latencies else np.array([np.nan])
    n = len(latencies) + errors[0]
    return {"requests": n, "seconds": seconds, "rps": n / seconds, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()), "errors": errors[0]}


# ------------------------------------------------------------------ batch against single
def batch_vs_single(base_url, images, repeat=21):
    """Seconds for 64 one-image requests and for one 64-image request (medians of ``repeat``)."""
    host, port = base_url.split("//", 1)[1].rsplit(":", 1)
    pngs = [png_bytes(im) for im in images[:N_BATCH]]
    singles = [multipart([p]) for p in pngs]
    batch = multipart(pngs)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)

    def post(body, ctype, n_expected):
        conn.request("POST", "/predict?top_k=1", body=body, headers={"Content-Type": ctype})
        response = conn.getresponse()
        answer = response.read()
        if response.status != 200:
            raise RuntimeError(f"/predict answered {response.status}: {answer[:300]!r}")
        got = len(json.loads(answer)["predictions"])
        if got != n_expected:
            raise RuntimeError(f"expected {n_expected} predictions, got {got}")

    def all_singles():
        for body, ctype in singles:
            post(body, ctype, 1)

    t_single, t_batch = [], []
    all_singles()
    post(*batch, N_BATCH)  # warm-up
    for _ in range(repeat):
        t0 = time.perf_counter()
        all_singles()
        t_single.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        post(*batch, N_BATCH)
        t_batch.append(time.perf_counter() - t0)
    conn.close()
    return statistics.median(t_single), statistics.median(t_batch), len(batch[0])


# ------------------------------------------------------------------ report
def _cpu_seconds(pids):
    """User + system CPU seconds used so far by the processes ``pids`` (all their threads; /proc)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _client_cpu_seconds():
    """CPU seconds of this process and its finished children (wrk, or the Python client's threads)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _measured_run(load, server, path, concurrency, duration, body, ctype, workdir):
    """One load run, with how the connections were spread over the workers halfway through
    and the CPU seconds the workers and the client spent in it."""
    spread = {}
    port = int(server.base_url.rsplit(":", 1)[1])
    workers = worker_pids(server.pid)
    server_cpu, client_cpu = _cpu_seconds(workers), _client_cpu_seconds()
    timer = threading.Timer(duration / 2, lambda: spread.update(connections_per_worker(server.pid, port)))
    timer.start()
    try:
        s = load(server.base_url + path, concurrency, duration, body, ctype, workdir)
    finally:
        timer.cancel()
    s["server_cpu"] = _cpu_seconds(workers) - server_cpu
    s["client_cpu"] = _client_cpu_seconds() - client_cpu
    s["spread"] = "/".join(str(n) for n in sorted(spread.values(), reverse=True)) or "?"
    return s


def _pooled(runs):
    """One row for several runs of one endpoint and concurrency."""
    requests, seconds = sum(s["requests"] for s in runs), sum(s["seconds"] for s in runs)
    return {"requests": requests, "seconds": seconds, "rps": requests / seconds,
            "p50_ms": statistics.median(s["p50_ms"] for s in runs), "p99_ms": max(s["p99_ms"] for s in runs),
            "max_ms": max(s["max_ms"] for s in runs), "errors": sum(s["errors"] for s in runs),
            "server_cpu": sum(s["server_cpu"] for s in runs), "client_cpu": sum(s["client_cpu"] for s in runs),
            "spread": " ".join(s["spread"] for s in runs)}


def _cpu_per_request(s):
    """Microseconds of CPU per request: (workers', client's)."""
    n = max(s["requests"], 1)
    return s["server_cpu"] / n * 1e6, s["client_cpu"] / n * 1e6


def _share_of_hello(results, runs, name, c):
    """Endpoint ``name`` against hello at concurrency ``c``: pooled req/s ratio, the ratio of
    each round, hello's CPU per request over ``name``'s, and both CPU figures (us)."""
    per_round = [s["rps"] / h["rps"] for h, s in zip(runs["hello", c], runs[name, c])]
    cpu = {key: sum(_cpu_per_request(results[key, c])) for key in ("hello", name)}
    return results[name, c]["rps"] / results["hello", c]["rps"], per_round, cpu["hello"] / cpu[name], cpu


def _rps_ratio(results, runs, a, b, c):
    """Endpoint ``a``'s requests/s over ``b``'s at concurrency ``c``: all rounds pooled, and by round."""
    by_round = [x["rps"] / y["rps"] for x, y in zip(runs[a, c], runs[b, c])]
    return results[a, c]["rps"] / results[b, c]["rps"], by_round


def _row(name, c, s):
    server_us, client_us = _cpu_per_request(s)
    return (f"{name:<11}{c:>5}{s['rps']:>11,.0f}{s['p50_ms']:>10.2f}{s['p99_ms']:>10.2f}"
            f"{s['max_ms']:>10.1f}{s['errors']:>8}{s['requests']:>10,}{server_us:>9.0f}{client_us:>8.0f}"
            f"  {s.get('spread', '?'):>8}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per load run")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating hello/predict runs per concurrency (the machine's speed drifts)")
    parser.add_argument("--concurrency", default="8,32", help="comma-separated connection counts")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    parser.add_argument("--body", default="multipart", choices=["multipart", "raw"],
                        help="how /predict gets its image: a multipart form (field 'image') or a raw image/png body")
    parser.add_argument("--worker-class", default="balanced", choices=sorted(WORKER_CLASSES))
    parser.add_argument("--client", default="auto", choices=["auto", "wrk", "python"])
    parser.add_argument("--warmup", type=int, default=3, help="seconds of unrecorded load on each endpoint first")
    parser.add_argument("--features", default="hog:pixels_per_cell=7x7", help="the model's feature spec")
    parser.add_argument("--slow", type=int, default=0, metavar="N",
                        help="also serve a second cvpipe server that N slow connections (headers at 1 byte/s, "
                             "reconnecting when dropped) hold open, and drive its /predict as predict+slow")
    parser.add_argument("--peer", action="store_true",
                        help="also serve the peer (bench/_peer_wsgi.py: skimage HOG + a scikit-learn pipeline in "
                             "Flask) under gunicorn's gthread worker, same workers x threads, and drive its /predict")
    parser.add_argument("--switch", help="also serve with these shortcuts switched to their other paths "
                                         "(bench_shortcuts.py names, comma-separated) and drive it as predict+sw")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    if args.peer and args.body != "multipart":
        parser.error("--peer answers multipart bodies only (its field 'image'), as the issue's peer does")
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk"))
    load = run_wrk if use_wrk else run_python_client

    print(machine_line())
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    with tempfile.TemporaryDirectory(prefix="cvpipe-bench-service-") as tmp:
        peer_model = Path(tmp) / "peer.joblib" if args.peer else None
        images = train_model(Path(tmp) / "models", args.features, peer_model)
        log = open(Path(tmp) / "gunicorn.log", "w+")
        options = dict(workers=args.workers, threads=args.threads, worker_class=args.worker_class,
                       app="_service_wsgi:app", pythonpath=str(BENCH_DIR), stdout=log, stderr=subprocess.STDOUT,
                       ready_timeout=120)
        server = start(Path(tmp) / "models", **options)
        servers = {"hello": server, "predict": server}
        try:
            if args.peer:  # the same gunicorn shape, stock gthread workers: what a user would run
                servers["peer"] = start(Path(tmp) / "models", **{**options, "app": "_peer_wsgi:app",
                                                                   "worker_class": "gthread", "ready_timeout": 0},
                                        env={**os.environ, "CVPIPE_PEER_MODEL": str(peer_model)})
                wait_until_ready(servers["peer"].base_url, 120, path="/healthz", proc=servers["peer"])
            if args.slow:
                servers["predict+slow"] = start(Path(tmp) / "models", **options)
                slow_clients = SlowClients(servers["predict+slow"].base_url, args.slow)
            if args.switch:
                servers["predict+sw"] = start(Path(tmp) / "models", env={**os.environ,
                                              "CVPIPE_BENCH_SWITCH": args.switch}, **options)
            print(f"gunicorn: {args.workers} {args.worker_class} workers x {args.threads} threads, "
                  f"service.gunicorn_conf, no preload; client: "
                  f"{'wrk (1 thread, keep-alive)' if use_wrk else 'Python threads (http.client keep-alive)'}, "
                  f"{args.rounds} alternating rounds of {args.duration} s per endpoint and concurrency")
            png = png_bytes(images[0])
            body, ctype = multipart([png]) if args.body == "multipart" else (png, "image/png")
            print(f"/predict body: {args.body}, one 28x28 PNG ({len(png)} bytes; body {len(body)} bytes), top_k=5\n")
            print(f"{'endpoint':<10}{'conc':>6}{'req/s':>11}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}"
                  f"{'errors':>8}{'requests':>10}{'srv us':>9}{'cli us':>8}  {'conns/worker':>8}")
            endpoints = [("hello", "/hello", None, None), ("predict", "/predict?top_k=5", body, ctype)]
            if args.peer:
                endpoints.append(("peer", "/predict?top_k=5", body, ctype))
            if args.slow:
                print(f"predict+slow: a second cvpipe server holding {args.slow} slow connections")
                endpoints.append(("predict+slow", "/predict?top_k=5", body, ctype))
            if args.switch:
                print(f"predict+sw: a second server with these shortcuts switched: {args.switch}")
                endpoints.append(("predict+sw", "/predict?top_k=5", body, ctype))
            runs = {}
            for name, path, b, ct in endpoints:
                if args.warmup:  # both workers loaded, kernels compiled, caches warm
                    load(servers[name].base_url + path, max(levels), args.warmup, b, ct, tmp)
            for c in levels:
                for r in range(args.rounds):  # the endpoints in turn, so drift hits them alike
                    for name, path, b, ct in endpoints:
                        s = _measured_run(load, servers[name], path, c, args.duration, b, ct, tmp)
                        runs.setdefault((name, c), []).append(s)
                        print(_row(f"{name} {r + 1}", c, s), flush=True)
            results = {key: _pooled(rs) for key, rs in runs.items()}
            print(f"\nall {args.rounds} rounds: req/s = all requests / all seconds, p50 the median "
                  f"of the rounds', p99 and max the worst round's")
            for (name, c), s in results.items():
                print(_row(name, c, s))
            t_single, t_batch, batch_bytes = batch_vs_single(server.base_url, images)
        finally:
            if args.slow:
                held = slow_clients.stop()
                print(f"slow connections: {held:,} opened in all (each held until the server dropped it)")
            for proc in set(servers.values()):
                stop(proc)
            log.seek(0)
            tail = [line for line in log.read().splitlines() if "ERROR" in line or "CRITICAL" in line]
            log.close()
    if tail:
        print("\ngunicorn log errors:\n  " + "\n  ".join(tail[-10:]))

    print("\nratios and targets")
    errors = sum(s["errors"] for s in results.values())
    print(f"  errors in all runs: {errors}  (target 0: {'met' if errors == 0 else 'NOT met'})")
    if 8 in levels:
        p99 = results["predict", 8]["p99_ms"]
        print(f"  /predict p99 at concurrency 8: {p99:.2f} ms  (target <= 20 ms: "
              f"{'met' if p99 <= 20 else 'NOT met'})")
    for c in levels:
        ratio, per_round, cpu_ratio, cpu = _share_of_hello(results, runs, "predict", c)
        print(f"  /predict req/s / hello req/s at concurrency {c}: {ratio:.2f} (not a target); "
              f"by round: {', '.join(f'{x:.2f}' for x in per_round)}")
        print(f"    CPU per request (workers + client): hello {cpu['hello']:.0f} us, /predict {cpu['predict']:.0f} us; "
              f"hello / predict {cpu_ratio:.2f}")
        if args.switch:
            gain, by_round = _rps_ratio(results, runs, "predict+sw", "predict", c)
            print(f"  switched ({args.switch}) at concurrency {c}: {gain:.3f}x /predict's req/s as shipped; "
                  f"by round: {', '.join(f'{x:.3f}' for x in by_round)}")
    if args.slow:
        for c in levels:
            ratio, by_round = _rps_ratio(results, runs, "predict+slow", "predict", c)
            print(f"  /predict req/s with {args.slow} slow connections held / without, at concurrency {c}: "
                  f"{ratio:.3f}  (target >= 0.90: {verdict(ratio, 0.9)}); by round: "
                  f"{', '.join(f'{x:.3f}' for x in by_round)}")
    if args.peer:
        for c in levels:
            ratio, by_round = _rps_ratio(results, runs, "predict", "peer", c)
            print(f"  cvpipe /predict req/s / the peer's at concurrency {c}: {ratio:.2f}x  (target >= 2.0x: "
                  f"{verdict(ratio, 2.0)}); by round: {', '.join(f'{x:.2f}' for x in by_round)}")
    speedup = t_single / t_batch
    print(f"  {N_BATCH} one-image requests: {t_single * 1e3:.1f} ms ({N_BATCH / t_single:,.0f} images/s); "
          f"one {N_BATCH}-image request ({batch_bytes:,} bytes): {t_batch * 1e3:.1f} ms "
          f"({N_BATCH / t_batch:,.0f} images/s)")
    print(f"  per-image throughput, batch / single: {speedup:.1f}x  (target >= 10x: {verdict(speedup, 10)})")
    print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
