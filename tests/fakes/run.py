"""Serve the platform fakes for a local live-mode demo: `python -m tests.fakes.run`.

Starts every fake that exists under tests/fakes/ (instagram.py, tiktok.py, youtube.py) on its own
loopback port, and prints the settings that point the app at them:

    $ .venv/bin/python -m tests.fakes.run
    INSTAGRAM_GRAPH_URL=http://127.0.0.1:8090
    TIKTOK_API_URL=http://127.0.0.1:8091
    YOUTUBE_API_URL=http://127.0.0.1:8092

Then run the app and a worker with those settings and PROVIDER_MODE=live (README, "Publishing
modes"). Options: `--port N` (first port; the others follow), `--processing-seconds S` (how long
each fake takes to process a video, for those that take the option). Ctrl-C stops them.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import threading
from collections.abc import Callable

from tests.fakes import FakeServer

# platform -> the setting that names its endpoint
FAKES = {
    "instagram": "INSTAGRAM_GRAPH_URL",
    "tiktok": "TIKTOK_API_URL",
    "youtube": "YOUTUBE_API_URL",
}
_FACTORY_NAMES = ("create_app", "make_app", "app_factory")


def wsgi_factory(module) -> Callable[..., Callable] | None:
    """How a fake's module makes its WSGI app: a factory function, or its Fake class."""
    for name in _FACTORY_NAMES:
        if callable(getattr(module, name, None)):
            return getattr(module, name)
    for name, value in vars(module).items():
        if (inspect.isclass(value) and value.__module__ == module.__name__
                and "fake" in name.lower() and "__call__" in vars(value)):
            return value
    return None


def make_fake(platform: str, processing_seconds: float | None):
    """The fake's WSGI app for `platform`, or None when that fake does not exist."""
    try:
        module = importlib.import_module(f"tests.fakes.{platform}")
    except ModuleNotFoundError:
        return None
    factory = wsgi_factory(module)
    if factory is None:
        return None
    parameters = inspect.signature(factory).parameters
    kwargs = {}
    if processing_seconds is not None and "processing_seconds" in parameters:
        kwargs["processing_seconds"] = processing_seconds
    return factory(**kwargs)


def start_fakes(first_port: int = 0, processing_seconds: float | None = None) -> dict[str, FakeServer]:
    """Start every fake that exists; platform -> its running server."""
    servers = {}
    for offset, platform in enumerate(FAKES):
        app = make_fake(platform, processing_seconds)
        if app is None:
            continue
        port = first_port + offset if first_port else 0
        servers[platform] = FakeServer(app, port=port).start()
    return servers


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8090, help="first port (0: any free ports)")
    parser.add_argument("--processing-seconds", type=float, default=None)
    args = parser.parse_args(argv)
    servers = start_fakes(args.port, args.processing_seconds)
    if not servers:
        raise SystemExit("no platform fake found under tests/fakes/")
    for platform, server in servers.items():
        print(f"{FAKES[platform]}={server.url}", flush=True)
    missing = sorted(set(FAKES) - set(servers))
    if missing:
        print(f"# no fake yet for: {', '.join(missing)} (their accounts use the stub client)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    main()
