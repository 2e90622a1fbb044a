# The publishing dashboard: gunicorn serving wsgi:app on 0.0.0.0:8000, migrations at start.
#
#   docker build -t publishing-dashboard .
#   docker run --rm -p 8000:8000 \
#     -e DATABASE_URL=postgresql://user:pass@db:5432/dashboard \
#     -e SECRET_KEY=... -e CREDENTIALS_KEYS=... -e QUEUE_URL=redis://redis:6379/0 \
#     publishing-dashboard
#   # a queue worker: the same image, another command (no migrations)
#   docker run --rm -e SKIP_MIGRATIONS=1 -e DATABASE_URL=... -e SECRET_KEY=... \
#     -e CREDENTIALS_KEYS=... -e QUEUE_URL=redis://redis:6379/0 publishing-dashboard \
#     flask worker --threads 8
#
# DASHBOARD_ENV=production is the default here, so the app refuses to start without DATABASE_URL,
# SECRET_KEY, CREDENTIALS_KEYS and QUEUE_URL (and names the missing one). For a throwaway trial on SQLite
# inside the container, pass -e DASHBOARD_ENV=development instead. compose.yaml runs the whole
# production layout (migrate once, web, worker, PostgreSQL, Redis) on one machine.
#
# Stopping: STOPSIGNAL is SIGTERM. gunicorn then finishes in-flight requests for up to 30 s
# (graceful_timeout in gunicorn.conf.py); a queue worker finishes the publishes it is running
# (a platform call takes seconds, a real upload minutes). Give the container longer than that
# before SIGKILL: `docker stop -t 40`, compose's stop_grace_period, Kubernetes'
# terminationGracePeriodSeconds. A worker killed mid-publish loses nothing: its log becomes
# `unconfirmed` for a person to check, never published twice.
#
# Debian 13 (trixie), pinned: a rebuild gets security updates, not another Debian release.
FROM python:3.11-slim-trixie

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Runtime requirements only (no pytest, no Playwright); every wheel is prebuilt for this image
# (psycopg[binary], cryptography), so no compiler is needed.
# constraints.txt pins every transitive dependency, so a rebuild installs what was tested.
COPY requirements.txt constraints.txt ./
RUN pip install -r requirements.txt -c constraints.txt

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app

COPY --chown=root:root dashboard/ ./dashboard/
COPY --chown=root:root templates/ ./templates/
COPY --chown=root:root static/ ./static/
COPY --chown=root:root migrations/ ./migrations/
COPY --chown=root:root wsgi.py gunicorn.conf.py ./
COPY --chown=root:root docker/entrypoint.sh /usr/local/bin/entrypoint.sh

# The code is root-owned and read-only to the app user; only instance/ (Flask's instance folder:
# the SQLite database and generated keys of a development trial) is writable.
RUN chmod 0755 /usr/local/bin/entrypoint.sh \
    && mkdir -p /app/instance && chown app:app /app/instance

USER app

ENV FLASK_APP=wsgi \
    DASHBOARD_ENV=production \
    GUNICORN_BIND=0.0.0.0:8000

EXPOSE 8000

STOPSIGNAL SIGTERM

# The web's liveness check (/healthz). It fits the web only: a queue worker serves no HTTP and
# brings its own check (compose.yaml: `flask queue check-worker`, its heartbeat).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('GUNICORN_BIND', '0.0.0.0:8000').rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]

ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
CMD ["gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"]
