"""`FLASK_APP=tests.fakes.counting_worker flask worker`: a worker whose TikTok live client is the
counting platform's (tests/fakes/counting.py) at COUNTING_FAKE_URL, for the crash tests."""

import os

from dashboard import create_app
from dashboard.publishing.providers import LIVE_CLIENTS
from tests.fakes.counting import CountingClient

CountingClient.base_url = os.environ["COUNTING_FAKE_URL"]
LIVE_CLIENTS["tiktok"] = CountingClient
app = create_app()
