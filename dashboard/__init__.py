"""The publishing dashboard: a Flask + htmx app and JSON API for publishing short clips."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask.json.provider import DefaultJSONProvider
from flask_wtf.csrf import CSRFError
from spectree import Response
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from .config import load_config
from .errors import DomainError, database_error_cause


class ContractOrderJSON(DefaultJSONProvider):
    """Flask's JSON, with the fields in the order the contract gives them (not sorted)."""

    sort_keys = False


def create_app(config: dict | None = None) -> Flask:
    """Build the app: settings (from the environment, then `config`), extensions, blueprints."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder="../templates",
        static_folder="../static",
    )
    app.config.from_mapping(load_config(app.instance_path))
    if config:
        app.config.from_mapping(config)
    app.json = ContractOrderJSON(app)
    from .sessions import CookieSessionInterface

    app.session_interface = CookieSessionInterface()
    if app.config["TRUSTED_PROXIES"]:
        # Behind N proxies the client's address is the Nth from the right of X-Forwarded-For
        # (the sign-in throttle keys on it); without them those headers are never trusted.
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]  # Flask's documented wrapping
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    from .extensions import csrf, db, htmx, login_manager, migrate

    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # A server's connections are pooled; SQLite's are cheap, and an in-memory database's
        # pool takes no size.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "pool_size": app.config["DATABASE_POOL_SIZE"],
            "max_overflow": app.config["DATABASE_MAX_OVERFLOW"],
            **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}),
        }
    db.init_app(app)
    from .database_connections import set_up_pool

    with app.app_context():
        for engine in db.engines.values():
            set_up_pool(engine, app.config)
    migrate.init_app(app, db, directory=str(app.root_path + "/../migrations"))
    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)
    from .media.http import with_upload_allowance

    # After htmx-flask set its request class: upload views may receive MEDIA_MAX_UPLOAD_BYTES.
    app.request_class = with_upload_allowance(app.request_class)

    from . import models  # noqa: F401  (register the tables with the metadata)
    from .api.spec import openapi_document, spec
    from .api.views import bp as api_bp
    from .publishing.api import bp as publishing_bp
    from .schemas import Health
    from .web import init_app as init_web

    for blueprint in (api_bp, publishing_bp):
        csrf.exempt(blueprint)
        app.register_blueprint(blueprint)
    init_web(app)
    spec.register(app)

    from . import queue

    queue.init_app(app)

    from . import ops

    ops.init_app(app)

    @app.get("/openapi.json")
    def openapi():
        """The OpenAPI 3 document, generated from the pydantic models."""
        return jsonify(openapi_document())

    # spectree's own copy of the document serves the same one.
    app.view_functions["openapi_apidoc"] = openapi

    @app.get("/healthz")
    @spec.validate(resp=Response(HTTP_200=Health, HTTP_503=Health), security={}, tags=["health"])
    def healthz():
        """Liveness and database reachability (no token needed)."""
        try:
            db.session.execute(text("SELECT 1"))
        except (OperationalError, PoolTimeout):
            db.session.rollback()
            return jsonify(status="unavailable", database="unreachable"), 503
        return jsonify(status="ok", database="ok")

    _register_error_handlers(app)

    from . import security

    security.init_app(app)

    from .cli import register_commands

    register_commands(app)
    return app


# /clips/uploads is the pages' tus endpoint: its answers are read by JavaScript.
API_PREFIXES = ("/api/", "/publishing/", "/healthz", "/openapi.json", "/clips/uploads")


def wants_json() -> bool:
    """True for the JSON API's URLs; pages get HTML errors."""
    return request.path.startswith(API_PREFIXES)


def problem(status: int, title: str, detail: str | None = None, errors=None, extra=None, **headers):
    """An RFC 9457 problem+json response (`extra`: extension members)."""
    body = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    response.headers.update(headers)
    return response


def _register_error_handlers(app: Flask) -> None:
    from .extensions import db
    from .ops.error_tracking import report_exception

    def page(status: int, title: str, detail: str | None):
        if status == 503:
            # The database is away: its page must not need it. Rendered without the context
            # processors (Flask-Login's would load the signed-in user from the database).
            html = app.jinja_env.get_template("errors/unavailable.html").render(
                status=status, title=title, detail=detail)
            return html, status
        return render_template("errors/error.html", status=status, title=title, detail=detail), status

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        db.session.rollback()
        if wants_json():
            return problem(exc.status, exc.title, exc.detail, [e.as_dict() for e in exc.errors],
                           exc.extra, **exc.headers)
        return page(exc.status, exc.title, exc.detail)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if wants_json():
            headers = {"WWW-Authenticate": "Bearer"} if exc.code == 401 else {}
            return problem(exc.code or 500, exc.name, exc.description, **headers)
        if exc.code == 401:
            return exc
        if isinstance(exc, CSRFError):  # what it means to the person who pressed the button
            return page(400, "Form expired", "The form expired; reload the page and try again.")
        return page(exc.code or 500, exc.name, exc.description)

    # What a person is told for each cause (database_error_cause), never the driver's words.
    unavailable = {
        "database is locked": "the database is busy (locked by another writer); try again shortly",
        "database timed out": "the database is too slow to answer right now; try again shortly",
    }

    @app.errorhandler(OperationalError)
    @app.errorhandler(PoolTimeout)
    def database_down(exc: OperationalError | PoolTimeout):
        try:
            db.session.rollback()
        except (OperationalError, PoolTimeout):
            pass
        cause = database_error_cause(exc)
        app.logger.error("%s on %s %s: %s", cause, request.method, request.path, type(exc).__name__)
        detail = unavailable.get(cause, "the database is unreachable; try again shortly")
        return http_error(ServiceUnavailable(detail))

    @app.errorhandler(Exception)
    def bug(exc: Exception):
        if isinstance(exc, HTTPException):
            return http_error(exc)
        db.session.rollback()
        report_exception(exc)  # the handler answers, so the Flask integration does not see it
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return http_error(InternalServerError())
