"""`flask queue status` and `flask queue sweep`."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext


@click.group("queue")
def queue_cli():
    """The task queue: what waits, which workers run."""


@queue_cli.command("status")
@with_appcontext
def status_command():
    """Pending and scheduled messages, due and unconfirmed posts, workers seen."""
    from .health import queue_report

    report = queue_report(current_app)
    click.echo(f"pending:     {report.pending} message(s) ready for a worker")
    click.echo(f"scheduled:   {report.scheduled} message(s) held for a later time")
    click.echo(f"due:         {report.due} post(s) due and not started"
               + (f" (oldest waiting {report.oldest_due_seconds:.0f} s)" if report.due else ""))
    click.echo(f"unconfirmed: {report.unconfirmed} post(s) waiting for a person to check")
    click.echo(f"workers:     {len(report.live_workers)} seen in the last "
               f"{report.stale_after:.0f} s")
    for worker in report.workers:
        state = "alive" if worker.age_seconds <= report.stale_after else "gone"
        click.echo(f"  {worker.name}  {worker.threads} threads, last seen "
                   f"{worker.age_seconds:.0f} s ago ({state})")
    if report.workers_missing:
        click.echo("warning: posts are due and no worker has been seen", err=True)


@queue_cli.command("sweep")
@with_appcontext
def sweep_command():
    """Run the minute sweep now: mark interrupted posts unconfirmed, re-queue lost ones."""
    from ..extensions import db
    from ..publishing.worker import sweep

    report = sweep(db)
    click.echo(f"requeued {report['requeued']}, marked {report['interrupted']} interrupted")


@queue_cli.command("check-worker")
@with_appcontext
def check_worker_command():
    """Exit 0 when a worker on this host has written a heartbeat recently (a container check)."""
    import socket

    from .health import workers_seen

    stale = current_app.config["WORKER_STALE_SECONDS"]
    host = socket.gethostname()
    mine = [w for w in workers_seen(current_app.extensions["huey"]) if w.host == host]
    if not mine or mine[0].age_seconds > stale:
        raise click.ClickException(f"no worker on {host} has written a heartbeat in {stale:.0f} s")
    click.echo(f"worker {mine[0].name} last seen {mine[0].age_seconds:.0f} s ago")


@click.group("metrics")
def metrics_cli():
    """Prometheus metrics (served at /metrics)."""


@metrics_cli.command("reset")
def reset_metrics_command():
    """Empty PROMETHEUS_MULTIPROC_DIR; run it before the processes that write there start."""
    import os
    from pathlib import Path

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        click.echo("PROMETHEUS_MULTIPROC_DIR is not set: nothing to reset")
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    removed = 0
    for path in Path(directory).glob("*.db"):
        path.unlink()
        removed += 1
    click.echo(f"removed {removed} metrics file(s) from {directory}")
