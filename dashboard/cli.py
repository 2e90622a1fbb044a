"""flask commands: users, tokens, demo data, credentials rotation, first-run setup."""

from __future__ import annotations

import logging
import secrets
import signal
import sys

import click
from flask import Flask
from flask.cli import with_appcontext
from sqlalchemy import func, select

from .errors import DomainError


def register_commands(app: Flask) -> None:
    """Attach the command groups to the app's CLI."""
    app.cli.add_command(users_cli)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(credentials_cli)
    app.cli.add_command(seed_demo)
    app.cli.add_command(first_run)
    app.cli.add_command(worker)
    app.cli.add_command(media_cli)


def _fail(exc: DomainError):
    raise click.ClickException(exc.detail)


@click.group("users")
def users_cli():
    """Manage dashboard users."""


@users_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "editor", "viewer"]), default="viewer",
              show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_user_command(email: str, role: str, password_stdin: bool):
    """Create a user; asks for the password unless --password-stdin is given."""
    from .extensions import db
    from .users import create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(db, email, password, role)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"created {user.role} {user.email}")


@users_cli.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def set_password_command(email: str, password_stdin: bool):
    """Set a user's password (an admin's reset); the user is signed out everywhere."""
    from .extensions import db
    from .users import find_user, set_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:
        user = find_user(db, email)
        set_password(db, user.id, password)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"new password set for {user.email}; their sessions are signed out")


@click.group("tokens")
def tokens_cli():
    """Manage API tokens."""


@tokens_cli.command("create")
@click.argument("email")
@click.option("--name", required=True, help="What the token is for, e.g. 'ci' or 'zapier'.")
def create_token_command(email: str, name: str):
    """Create an API token for a user and print it once."""
    from .extensions import db
    from .users import create_token, find_user

    try:
        new = create_token(db, find_user(db, email).id, name)
    except DomainError as exc:
        _fail(exc)
    click.echo(new.plaintext)


@click.group("credentials")
def credentials_cli():
    """Encrypted account credentials."""


@credentials_cli.command("rotate")
def rotate_command():
    """Re-encrypt every account's credentials under the newest CREDENTIALS_KEYS key."""
    from .credentials import rotate_credentials
    from .extensions import db

    report = rotate_credentials(db)
    click.echo(f"re-encrypted {report.rotated} account(s)")
    if report.unreadable:
        click.echo(f"warning: {report.unreadable} account(s) hold credentials no configured key "
                   "can open; they were left as they are", err=True)


@click.command("seed-demo")
def seed_demo():
    """Add demo accounts, satellites and clips; does nothing on a non-empty database."""
    from .demo import seed_demo_data
    from .extensions import db

    if seed_demo_data(db):
        click.echo("demo data added")
    else:
        click.echo("database not empty: demo data not added")


@click.command("first-run")
@click.option("--email", default="admin@example.com", show_default=True)
def first_run(email: str):
    """Seed demo data and create an admin with a generated password and API token, once.

    Prints the password and the token; on later runs prints nothing new.
    """
    from .demo import seed_demo_data
    from .extensions import db
    from .models import User
    from .users import create_token, create_user

    seed_demo_data(db)
    if db.session.scalar(select(func.count()).select_from(User)):
        click.echo("users exist already: no new admin created")
        return
    password = secrets.token_urlsafe(12)
    user = create_user(db, email, password, "admin")
    token = create_token(db, user.id, "first-run").plaintext
    click.echo("")
    click.echo("  Sign in at http://127.0.0.1:5000 with")
    click.echo(f"    email:    {user.email}")
    click.echo(f"    password: {password}")
    click.echo(f"  API token (shown once): {token}")
    click.echo("")


@click.command("worker")
@click.option("--threads", type=int, default=None,
              help="Concurrent publishes (default: the WORKER_THREADS setting).")
@with_appcontext
def worker(threads: int | None):
    """Run a queue worker: publishes queued, scheduled and retried posts until stopped."""
    from flask import current_app

    from .extensions import db
    from .ops.health import start_heartbeat
    from .publishing import queue_watch
    from .publishing.worker import sweep

    app = current_app._get_current_object()  # type: ignore[attr-defined]  # the proxy's own method
    huey = app.extensions["huey"]
    threads = threads or app.config["WORKER_THREADS"]
    # Catch up at once on what happened while no worker ran (missed posts, interrupted ones).
    report = sweep(db)
    db.session.remove()
    # A log line, not an echo: with LOG_FORMAT=json every line a worker writes is JSON.
    logging.getLogger("dashboard.worker").info(
        "worker: %d threads on %s queue; start-up sweep requeued %d, interrupted %d, resumed %d "
        "live steps", threads, app.config["QUEUE_URL"].split("://")[0], report["requeued"],
        report["interrupted"], report["resumed"])
    # SIGTERM (make run's trap, `docker stop`, systemd) is a graceful stop: publishes in flight
    # finish and are recorded, for at most WORKER_SHUTDOWN_TIMEOUT. Huey's default treats
    # SIGTERM as "stop now", which would leave them in `publishing` for the sweep.
    consumer = huey.create_consumer(workers=threads, worker_type="thread", periodic=True,
                                    initial_delay=0.05, max_delay=1.0, scheduler_interval=1,
                                    check_worker_health=True, graceful_signal="TERM",
                                    shutdown_timeout=app.config["WORKER_SHUTDOWN_TIMEOUT"])
    # Ctrl-C stays graceful too (Huey would make it "stop now" once SIGTERM is the graceful
    # one); a second Ctrl-C still interrupts the wait.
    consumer._signal_actions[signal.SIGINT] = (False, True)
    queue_watch.start(app, huey)
    heartbeat = start_heartbeat(app, huey, threads)
    try:
        consumer.run()
    finally:
        heartbeat.stop()


@click.group("media")
def media_cli():
    """Uploaded videos."""


@media_cli.command("sweep")
def media_sweep_command():
    """Delete stale unfinished uploads, files no upload owns and old storage objects no clip
    points at (the worker does it every 15 min)."""
    from .extensions import db
    from .media.uploads import sweep_uploads

    removed = sweep_uploads(db)
    click.echo(", ".join(f"{name.replace('_', ' ')}: {count}" for name, count in removed.items()))
