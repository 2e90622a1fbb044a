"""`python -m tests.fakes.run` serves every platform fake that exists, each over real HTTP, and
prints the settings that point the app at them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import httpx

from tests.fakes.run import FAKES, start_fakes

from server_support import ROOT


def existing_fakes() -> set[str]:
    return {platform for platform in FAKES
            if importlib.util.find_spec(f"tests.fakes.{platform}") is not None}


def test_every_existing_fake_is_served_on_its_own_port():
    servers = start_fakes(0)
    try:
        assert set(servers) == existing_fakes()
        assert len({server.port for server in servers.values()}) == len(servers)
        for server in servers.values():
            # Any HTTP answer (a 404 for an unknown path, a 401 without a token) is a live fake.
            assert httpx.get(f"{server.url}/", timeout=5).status_code < 500
    finally:
        for server in servers.values():
            server.stop()


def test_the_script_prints_the_settings_for_live_mode():
    process = subprocess.Popen([sys.executable, "-m", "tests.fakes.run", "--port", "0"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if not existing_fakes():
            _, err = process.communicate(timeout=30)
            assert process.returncode != 0 and "no platform fake found" in err
            return
        lines = [process.stdout.readline().strip() for _ in existing_fakes()]
        settings = dict(line.split("=", 1) for line in lines)
        assert set(settings) == {FAKES[platform] for platform in existing_fakes()}
        for url in settings.values():
            assert httpx.get(f"{url}/", timeout=5).status_code < 500
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(10)
