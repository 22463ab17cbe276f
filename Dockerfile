# syntax=docker/dockerfile:1
# Two images from one file (see docker-compose.yml):
#   docker build -t cvpipe-api .                    # the default target: the prediction API under gunicorn
#   docker build --target jobs -t cvpipe-jobs .     # + Dask: a scheduler, a worker, or `cvpipe extract`
#   docker run -p 8000:8000 -v "$PWD/models:/models:ro" cvpipe-api
# The API image does not carry Dask (a Dask scheduler runs any code a client sends it). Each
# installs with its constraints file (constraints/): the versions the tests passed with.
FROM python:3.11-slim-bookworm AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY constraints ./constraints
COPY compute ./compute
COPY features ./features
COPY classifiers ./classifiers
COPY pipeline ./pipeline
COPY service ./service
COPY cvpipe ./cvpipe

# Not root. Numba caches its compiled kernels beside the sources unless told otherwise,
# and site-packages is not writable by this user: the cache goes to /tmp.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin cvpipe \
 && mkdir -p /models /data /runs \
 && chown cvpipe:cvpipe /data /runs

ENV CVPIPE_MODELS=/models \
    CVPIPE_DATA=/data \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    MPLCONFIGDIR=/tmp/matplotlib

# --------------------------------------------------------------------------- the Dask roles
FROM base AS jobs
RUN pip install -c constraints/jobs.txt ".[dist]" \
 && rm -rf /src
USER cvpipe
WORKDIR /home/cvpipe
CMD ["cvpipe", "--help"]

# --------------------------------------------------------------------------- the API (default)
FROM base AS api
# gunicorn comes with the package (Linux), pinned by the constraints: service/gunicorn_worker.py
# overrides its gthread worker.
RUN pip install -c constraints/api.txt . \
 && rm -rf /src
# gunicorn reads its settings from this file (CVPIPE_* variables below change them). A file,
# not `python:service.gunicorn_conf`: importing the package would load numpy into the master.
COPY service/gunicorn_conf.py /etc/cvpipe/gunicorn.conf.py
USER cvpipe
WORKDIR /home/cvpipe

ENV CVPIPE_BIND=0.0.0.0:8000 \
    CVPIPE_WORKERS=2 \
    CVPIPE_THREADS=2

EXPOSE 8000
VOLUME ["/models"]

# /readyz answers 200 once the default model is loaded (503 before and without one).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]

# exec form: gunicorn runs as PID 1 and gets docker's SIGTERM itself
# (graceful stop, CVPIPE_GRACEFUL_TIMEOUT s); `docker kill -s HUP` reloads the models.
CMD ["gunicorn", "--config", "/etc/cvpipe/gunicorn.conf.py", "service.wsgi:app"]
