#!/bin/sh
# Container entry step: bring the schema up to date, then serve (or run the given command).
#
#   docker run IMAGE                       -> flask db upgrade, then gunicorn (the CMD)
#   docker run IMAGE flask users create …  -> flask db upgrade, then that command
#
# Set SKIP_MIGRATIONS=1 when a separate release step runs `flask db upgrade` (several replicas).
set -eu

if [ "${SKIP_MIGRATIONS:-0}" != "1" ]; then
    echo "entrypoint: flask db upgrade" >&2
    flask db upgrade
fi

if [ "$#" -eq 0 ]; then
    set -- gunicorn --config gunicorn.conf.py wsgi:app
fi
exec "$@"
