"""Faithful local implementations of the platforms' protocols, served over real HTTP.

Each platform's fake is a WSGI app (one module per platform) that speaks the documented
protocol of ../shared/platforms.md: its paths, statuses, chunk rules, errors, processing delays
and quotas, and it counts what it really published so that tests can assert "exactly once".
`FakeServer` runs any of them on a loopback port in a thread of the test process (so
time-machine moves its clock too).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # tests read counters, not access logs
        pass

    def make_environ(self):
        environ = super().make_environ()
        # werkzeug leaves out header names with underscores (CGI cannot tell them from dashes),
        # but protocols use them (Instagram's `file_size`): the raw headers, for the fakes.
        environ["fake.raw_headers"] = list(self.headers.items())
        return environ


class FakeServer:
    """A WSGI app served on 127.0.0.1 on a free port, in a background thread.

    with FakeServer(app) as server:
        server.url  # "http://127.0.0.1:PORT"
    """

    def __init__(self, app: Callable, host: str = "127.0.0.1", port: int = 0):
        self.app = app
        self._server = make_server(host, port, app, threaded=True,
                                   request_handler=_QuietHandler)
        self.host = host
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name=f"fake-server-{self.port}")

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def cascade(*apps: Callable) -> Callable:
    """One WSGI app made of several: the first that does not answer 404 wins.

    Lets a platform's OAuth endpoints and its API endpoints (which share a host, e.g.
    graph.facebook.com) live in separate fakes served together.
    """

    def app(environ, start_response):
        body = Request(environ).get_data()  # read once; every app gets its own copy
        last = None
        for candidate in apps:
            copy = dict(environ, **{"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))})
            response = Response.from_app(candidate, copy)
            if response.status_code != 404:
                return response(environ, start_response)
            last = response
        return (last or Response("not found", status=404))(environ, start_response)

    return app
