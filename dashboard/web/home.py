"""Home: the headline counts, the 7-day success rate per platform, and the latest failures."""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, current_app, redirect, render_template, url_for

from .. import stats
from ..extensions import db
from ..linking import accounts_needing_attention
from ..models import FINAL_STATUSES, PublishLog
from ..ops.health import queue_report_or_none
from ..publishing import background
from .access import role_required
from .filters import user_zone
from .forms import FORM_EXPIRED, flash_retry, retry_button
from .htmx import wants_fragment

bp = Blueprint("home", __name__)

RATE_DAYS = 7
FAILURES_SHOWN = 10


def chart_bars(rates: list[stats.PlatformRate]) -> list[dict]:
    """Geometry of the success-rate bar chart: one horizontal bar per platform, 0-100 %."""
    bars = []
    for index, rate in enumerate(rates):
        bars.append({
            "platform": rate.platform,
            "y": index * 44,
            "width": (rate.rate or 0) * 100,  # in percent of the plot's width
            "label": "no attempts" if rate.rate is None else f"{rate.percent}% of {rate.finished}",
            "rate": rate,
        })
    return bars


@bp.get("/")
@role_required("viewer")
def index():
    """The dashboard's overview; an htmx request (the periodic refresh) gets the overview only."""
    rates = stats.success_rates(db, days=RATE_DAYS)
    context = {
        "counts": stats.counts(db, zone=user_zone()),
        "rates": rates,
        "bars": chart_bars(rates),
        "days": RATE_DAYS,
        "queue": queue_report_or_none(current_app),
    }
    if wants_fragment():
        return render_template("home/_overview.html", **context)
    return render_template(
        "home/index.html", failures=stats.latest_failures(db, FAILURES_SHOWN),
        attention=accounts_needing_attention(db), **context)


@bp.post("/failures/<uuid:log_id>/retry")
@role_required("editor")
def retry(log_id: uuid.UUID):
    """Queue a new attempt of a failed post, once (background.retry: the same retry as the
    history, the batch page and the API).

    An htmx request gets the outcome for the row's result cell; a plain form post is redirected
    home with it as a flash message.
    """
    if db.session.get(PublishLog, log_id) is None:
        abort(404, "That publish attempt no longer exists.")
    queued, error = retry_button(log_id)
    if error == FORM_EXPIRED:
        abort(400, "The form has expired; reload the page and try again.")
    if wants_fragment():
        return render_template("home/_retry_result.html", log_id=log_id, queued=queued, error=error,
                               first=True, final_statuses=FINAL_STATUSES)
    flash_retry(error)
    return redirect(url_for("home.index"))


@bp.get("/retries/<uuid:retry_id>")
@role_required("viewer")
def retry_state(retry_id: uuid.UUID):
    """Where a retry started from home stands (polled by its result cell until it is final)."""
    queued = background.get_log(db, retry_id)
    if not wants_fragment():
        return redirect(url_for("history.index", clip=queued.clip_id, _anchor=f"log-{queued.id}"))
    return render_template("home/_retry_state.html", queued=queued, final_statuses=FINAL_STATUSES)
