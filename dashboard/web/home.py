"""Home: the headline counts, the 7-day success rate per platform, and the latest failures."""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from htmx_flask import request  # flask's request, typed with its .htmx
from pydantic import ValidationError

from .. import stats
from ..errors import DomainError
from ..extensions import db
from ..history import retry_publish
from ..linking import accounts_needing_attention
from ..models import PublishLog, platform_name
from ..ops.health import queue_report_or_none
from .access import role_required
from .filters import user_zone
from .forms import EmptyForm

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
    if request.htmx:
        return render_template("home/_overview.html", **context)
    return render_template(
        "home/index.html", failures=stats.latest_failures(db, FAILURES_SHOWN),
        attention=accounts_needing_attention(db), **context)


@bp.post("/failures/<uuid:log_id>/retry")
@role_required("editor")
def retry(log_id: uuid.UUID):
    """Publish a failed attempt's clip again: same platform, account, caption and hashtags.

    An htmx request gets the result for the row's result cell; a plain form post is redirected
    home with the result as a flash message.
    """
    if db.session.get(PublishLog, log_id) is None:
        abort(404, "That publish attempt no longer exists.")
    if not EmptyForm().validate_on_submit():
        abort(400, "The form has expired; reload the page and try again.")
    result = error = None
    try:
        result = retry_publish(db, log_id)
    except DomainError as exc:
        # The account may have been deactivated, used up its quota, or the caption may break a
        # changed limit since.
        db.session.rollback()
        error = exc.detail
    except ValidationError as exc:
        error = "; ".join(e["msg"] for e in exc.errors())
    if request.htmx:
        return render_template("home/_retry_result.html", log_id=log_id, result=result, error=error)
    if result is not None and result.success:
        flash(f"Published again on {platform_name(result.platform)}: {result.external_url}", "success")
    elif result is not None:
        flash(f"The retry failed too: {result.error_message}", "error")
    else:
        flash(f"Could not retry: {error}", "error")
    return redirect(url_for("home.index"))
