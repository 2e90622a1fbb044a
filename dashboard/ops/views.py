"""/readyz (can this process serve?) and /metrics (Prometheus text format)."""

from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, current_app, jsonify, request
from pydantic import BaseModel
from spectree import Response

from ..api.spec import spec

bp = Blueprint("ops", __name__)


class Readiness(BaseModel):
    """Whether this process can serve: each dependency is "ok" or says why not."""

    status: str
    database: str
    queue: str


@bp.get("/readyz")
@spec.validate(resp=Response(HTTP_200=Readiness, HTTP_503=Readiness), security={}, tags=["health"])
def readyz():
    """Readiness: 200 when the database and the task queue both answer, else 503 naming which."""
    from .health import readiness

    checks = readiness(current_app)
    ready = all(value == "ok" for value in checks.values())
    return jsonify(status="ok" if ready else "unavailable", **checks), 200 if ready else 503


def metrics_allowed() -> bool:
    """The request bears METRICS_TOKEN, or comes from METRICS_ALLOW_NETWORKS."""
    config = current_app.config
    token = config["METRICS_TOKEN"]
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(
            header[len("Bearer "):].encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in network for network in config["METRICS_ALLOW_NETWORKS"])


@bp.get("/metrics")
def metrics():
    """Prometheus metrics, for a scraper with METRICS_TOKEN or on METRICS_ALLOW_NETWORKS."""
    from .. import problem
    from .metrics import render_metrics

    if not metrics_allowed():
        return problem(403, "Forbidden", "metrics need METRICS_TOKEN or an allowed network",
                       **{"WWW-Authenticate": "Bearer"})
    from prometheus_client import CONTENT_TYPE_LATEST

    return render_metrics(current_app), 200, {"Content-Type": CONTENT_TYPE_LATEST}
