"""The batch page: one cross-post, one row per target, updating live until every target is done.

The rows and the summary are one fragment (`_progress.html`) that replaces itself every second
with htmx (contact-app's progress idiom) while the batch runs; the fragment of a finished batch
has no trigger, so polling stops by itself. Retry and "Mark as published" answer with the same
fragment, so a retried batch starts polling again.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, flash, redirect, render_template, url_for

from ..errors import NotFound
from ..extensions import db
from ..models import PublishStatus
from ..publishing import background
from .access import role_required
from .forms import flash_retry, retry_button, run_button
from .history import mark_published_from_form
from .htmx import wants_fragment

bp = Blueprint("batches", __name__, url_prefix="/batches")

WAITING = (PublishStatus.SCHEDULED.value, PublishStatus.QUEUED.value,
           PublishStatus.PUBLISHING.value, PublishStatus.PENDING.value)


def progress(batch) -> dict:
    """The batch's rows (each target's latest attempt) and its summary, for the templates."""
    summary = background.summarize_batch(batch)
    counts = summary.counts
    return {
        "batch": batch,
        "rows": background.current_logs(batch),
        "summary": summary,
        "succeeded": counts.get(PublishStatus.SUCCESS.value, 0),
        "failed": counts.get(PublishStatus.FAILED.value, 0),
        "unconfirmed": counts.get(PublishStatus.UNCONFIRMED.value, 0),
        "cancelled": counts.get(PublishStatus.CANCELLED.value, 0),
        "waiting": sum(counts.get(status, 0) for status in WAITING),
        "scheduled": counts.get(PublishStatus.SCHEDULED.value, 0),
    }


def _render(batch_id: uuid.UUID, row_errors: dict | None = None, mark_forms: dict | None = None,
            batch_errors: list[str] | None = None):
    batch = background.get_batch(db, batch_id)
    context = progress(batch) | {"row_errors": row_errors or {}, "mark_forms": mark_forms or {}}
    # An error about an attempt that is no longer a row (it was retried meanwhile) goes on top.
    shown = {row.id for row in context["rows"]}
    context["batch_errors"] = list(batch_errors or []) + [
        message for log_id, message in context["row_errors"].items() if log_id not in shown]
    if wants_fragment():
        return render_template("batches/_progress.html", **context)
    return render_template("batches/detail.html", **context)


@bp.get("/<uuid:batch_id>")
@role_required("viewer")
def detail(batch_id: uuid.UUID):
    """The batch page; htmx (the page's own polling) gets the rows and summary only."""
    return _render(batch_id)


def _log_of(batch_id: uuid.UUID, log_id: uuid.UUID):
    log_row = background.get_log(db, log_id)
    if log_row.batch_id != batch_id:
        raise NotFound(f"publish log {log_id} is not part of batch {batch_id}")
    return log_row


@bp.post("/<uuid:batch_id>/logs/<uuid:log_id>/retry")
@role_required("editor")
def retry(batch_id: uuid.UUID, log_id: uuid.UUID):
    """Queue a new attempt for a failed or unconfirmed target; the batch runs (and polls) again."""
    _log_of(batch_id, log_id)
    # A refusal (retried already, an account deactivated since, no quota left) shows in the row.
    _, error = retry_button(log_id)
    if not wants_fragment():
        flash_retry(error)
        return redirect(url_for("batches.detail", batch_id=batch_id))
    return _render(batch_id, row_errors={log_id: f"Not retried: {error}"} if error else None)


@bp.post("/<uuid:batch_id>/retry-failed")
@role_required("editor")
def retry_failed(batch_id: uuid.UUID):
    """"Retry all failed": queue a new attempt for every failed target (the same retry as a
    row's); the batch runs (and polls) again, and a target that was refused says why in its row."""
    background.get_batch(db, batch_id)
    done, error = run_button(lambda: background.retry_failed(db, batch_id))
    queued, refused = done if done is not None else ([], {})
    if not wants_fragment():
        if error:
            flash(f"Not retried: {error}", "error")
        else:
            flash(f"{len(queued)} retries queued." + (f" {len(refused)} refused." if refused else ""),
                  "error" if refused else "info")
        return redirect(url_for("batches.detail", batch_id=batch_id))
    errors = {log_id: f"Not retried: {message}" for log_id, message in refused.items()}
    if error:
        return _render(batch_id, batch_errors=[f"Not retried: {error}"])
    return _render(batch_id, row_errors=errors)


@bp.post("/<uuid:batch_id>/logs/<uuid:log_id>/mark-published")
@role_required("editor")
def mark_published(batch_id: uuid.UUID, log_id: uuid.UUID):
    """A person confirms an unconfirmed target went out (optionally with the post's URL)."""
    _log_of(batch_id, log_id)
    form, error = mark_published_from_form(log_id)
    if not wants_fragment():
        flash(f"Not marked: {error}" if error else "Marked as published.", "error" if error else "success")
        return redirect(url_for("batches.detail", batch_id=batch_id))
    return _render(batch_id, row_errors={log_id: error} if error else None,
                   mark_forms={log_id: form} if error else None)
