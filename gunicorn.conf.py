"""gunicorn settings for `make run` and the Docker image; override with GUNICORN_* env vars."""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# Threads, so one slow platform call (0.1-0.3 s simulated, minutes for real uploads) does not
# block a worker.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
timeout = 120
accesslog = "-"
