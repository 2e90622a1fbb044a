"""gunicorn's access log never writes a query string: OAuth callbacks carry one-time codes there."""

from __future__ import annotations

import logging
import runpy
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from gunicorn.config import Config
from gunicorn.glogging import Logger, SafeAtoms


def test_the_access_log_line_of_an_oauth_callback_holds_no_code(monkeypatch, tmp_path):
    # gunicorn.conf.py points PROMETHEUS_MULTIPROC_DIR at a new folder when it is unset; read here
    # in the test process, that would switch every later test's /metrics to multiprocess mode.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    settings = runpy.run_path(str(Path(__file__).resolve().parents[1] / "gunicorn.conf.py"))
    config = Config()
    config.set("accesslog", "-")
    config.set("access_log_format", settings["access_log_format"])
    logger = Logger(config)
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": "/accounts/connect/tiktok/callback?code="
               "secret-code-123&state=s", "PATH_INFO": "/accounts/connect/tiktok/callback",
               "QUERY_STRING": "code=secret-code-123&state=s", "SERVER_PROTOCOL": "HTTP/1.1",
               "HTTP_REFERER": "http://x/accounts/connect/tiktok/callback?code=secret-code-123",
               "REMOTE_ADDR": "127.0.0.1"}
    request = SimpleNamespace(headers=[], method="GET", path=environ["PATH_INFO"],
                              query=environ["QUERY_STRING"], uri=environ["RAW_URI"],
                              version=(1, 1))
    response = SimpleNamespace(status="302 FOUND", sent=0, headers=[("X-Request-Id", "rid-1")],
                               response_length=0)
    atoms = SafeAtoms(logger.atoms(response, request, environ, timedelta(seconds=0.01)))
    line = settings["access_log_format"] % atoms
    assert "GET /accounts/connect/tiktok/callback HTTP/1.1" in line and "302" in line
    assert "request_id=rid-1" in line
    assert "secret-code-123" not in line


def _access_lines_written(monkeypatch, tmp_path, accesslog: str) -> list[str]:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setenv("GUNICORN_ACCESSLOG", accesslog)
    settings = runpy.run_path(str(Path(__file__).resolve().parents[1] / "gunicorn.conf.py"))
    # gunicorn would apply the logging setup to this whole test process; the tests' own stays.
    monkeypatch.setattr("gunicorn.glogging.dictConfig", lambda config: None)
    config = Config()
    for name in ("accesslog", "access_log_format", "logconfig_dict", "logger_class"):
        config.set(name, settings[name])
    logger = config.logger_class(config)
    lines: list[str] = []
    catch = logging.Handler()
    catch.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger.access_log.addHandler(catch)
    try:
        request = SimpleNamespace(headers=[], method="GET", path="/healthz", query="", uri="/healthz",
                                  version=(1, 1))
        response = SimpleNamespace(status="200 OK", sent=0, headers=[("X-Request-Id", "rid-2")],
                                   response_length=0)
        logger.access(response, request, {"REQUEST_METHOD": "GET", "RAW_URI": "/healthz", "PATH_INFO": "/healthz",
                                          "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1"},
                      timedelta(seconds=0.01))
    finally:
        logger.access_log.removeHandler(catch)
    return lines


def test_the_access_log_is_on_by_default_and_off_with_an_empty_gunicorn_accesslog(monkeypatch, tmp_path):
    written = _access_lines_written(monkeypatch, tmp_path, "-")
    assert len(written) == 1 and "GET /healthz HTTP/1.1" in written[0] and "request_id=rid-2" in written[0]
    assert _access_lines_written(monkeypatch, tmp_path, "") == []
