# syntax=docker/dockerfile:1
# One image, several roles (see docker-compose.yml): the prediction API under gunicorn
# (the default command), a Dask scheduler or worker, and the `cvpipe extract` job.
#   docker build -t cvpipe .
#   docker run -p 8000:8000 -v "$PWD/models:/models:ro" cvpipe
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY compute ./compute
COPY features ./features
COPY classifiers ./classifiers
COPY pipeline ./pipeline
COPY service ./service
COPY cvpipe ./cvpipe
# gunicorn comes with the package (Linux); the dist extra brings Dask (scheduler, workers, extract job).
RUN pip install ".[dist]" \
 && rm -rf /src
# gunicorn reads its settings from this file (CVPIPE_* variables below change them). A file,
# not `python:service.gunicorn_conf`: importing the package would load numpy into the master.
COPY service/gunicorn_conf.py /etc/cvpipe/gunicorn.conf.py

# Not root. Numba caches its compiled kernels beside the sources unless told otherwise,
# and site-packages is not writable by this user: the cache goes to /tmp.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin cvpipe \
 && mkdir -p /models /data /runs \
 && chown cvpipe:cvpipe /data /runs
USER cvpipe
WORKDIR /home/cvpipe

ENV CVPIPE_MODELS=/models \
    CVPIPE_DATA=/data \
    CVPIPE_BIND=0.0.0.0:8000 \
    CVPIPE_WORKERS=2 \
    CVPIPE_THREADS=2 \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    MPLCONFIGDIR=/tmp/matplotlib

EXPOSE 8000
VOLUME ["/models"]

# /readyz answers 200 once the default model is loaded (503 before and without one).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]

# exec form: gunicorn runs as PID 1 and gets docker's SIGTERM itself
# (graceful stop, CVPIPE_GRACEFUL_TIMEOUT s); `docker kill -s HUP` reloads the models.
CMD ["gunicorn", "--config", "/etc/cvpipe/gunicorn.conf.py", "service.wsgi:app"]
