"""gunicorn settings for `make run`, the Docker image and the benchmarks.

Every setting can be overridden with an environment variable:

  GUNICORN_BIND      address to listen on (127.0.0.1:5000; the Docker image sets 0.0.0.0:8000)
  GUNICORN_WORKERS   worker processes (2)
  GUNICORN_THREADS   threads per worker (64)
  GUNICORN_WORKER_CONNECTIONS  connections one worker holds at most, idle keep-alive ones
                     included (1000, gunicorn's default)
  GUNICORN_KEEPALIVE seconds an idle keep-alive connection stays open (5; 0 closes after each
                     request)
  GUNICORN_TIMEOUT   seconds before a silent worker is restarted (120)
  GUNICORN_ACCESSLOG "" turns the access log off; otherwise ("-", the default) its lines go with the
                     app's own, through the logging setup below (stderr)
  GUNICORN_CONTROL_SOCKET  path of gunicorn's control socket (for `gunicornc`); off when unset
  LOG_LEVEL, LOG_FORMAT    the app's logging settings (dashboard/ops/logs.py), for gunicorn's
                     own lines too: text by default, JSON lines with LOG_FORMAT=json
  PROMETHEUS_MULTIPROC_DIR where the workers' metrics meet (a fresh temporary folder when
                     unset); share it with queue workers on this machine to count theirs too

Stopping: SIGTERM (the Docker image's STOPSIGNAL) lets each worker finish its requests for up to
`graceful_timeout` (30 s) before it is killed; give the container at least that long
(compose.yaml's stop_grace_period).
"""

import os
import tempfile

from gunicorn.glogging import Logger

from dashboard.ops.logs import logging_config

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# Threads, so one slow platform call (0.1-0.3 s simulated, minutes for real uploads) does not
# block a worker. A publish holds no database connection while it waits on the platform, so
# the threads need no bigger pool. 64 threads per worker, not 32: a gthread worker accepts
# connections greedily, so keep-alive clients are not spread evenly over the workers (the
# benchmark saw 64 clients split about 50/14); with 64 threads either worker alone can hold 64
# publishes waiting on platforms instead of queueing them behind sleeping threads.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "64"))
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None
errorlog = "-"
# The request id the app echoes in X-Request-Id, so an access line joins the app's lines. The
# path is written without its query string (%(U)s, not %(r)s): the OAuth callbacks
# (/accounts/connect/<platform>/callback) carry a one-time authorization code there.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}o)s'
logconfig_dict = logging_config(os.environ.get("LOG_LEVEL", "info").upper(),
                                os.environ.get("LOG_FORMAT", "text").lower())


class AccessLogWhenAsked(Logger):
    """gunicorn's logger, writing access lines only while `accesslog` is set. With a
    `logconfig_dict`, gunicorn writes one for every request whatever `accesslog` says."""

    def access(self, resp, req, environ, request_time):
        if self.cfg.accesslog is not None:
            super().access(resp, req, environ, request_time)


logger_class = AccessLogWhenAsked
# Counters and histograms from every worker are summed at scrape time (prometheus_client's
# multiprocess mode); the workers inherit this from the master, which sets it before forking.
_own_metrics_dir = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _own_metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
        prefix="dashboard-metrics-")


def on_exit(server):
    """Remove the metrics folder this server made for itself."""
    if _own_metrics_dir:
        import shutil

        shutil.rmtree(_own_metrics_dir, ignore_errors=True)
# Heartbeat files in memory, not on a possibly slow container overlay filesystem.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"
# gunicorn 25+ opens a control socket under $HOME by default. Nothing here uses it; every server
# on a machine (make run, the benchmarks) would share that one path, and the Docker image's user
# has no writable home. Opt in by naming a path.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket


def post_worker_init(worker):
    """Each web worker sweeps too (publishing/web_sweep.py): a log left `pending` by a killed
    worker becomes `unconfirmed` on time, and journaled outcomes are recorded, with no queue
    worker running."""
    from dashboard.publishing import web_sweep

    web_sweep.start(worker.wsgi)
