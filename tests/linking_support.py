"""The three platforms' OAuth fakes (and their API fakes) on real HTTP servers, for linking
tests: `running_platforms()` starts them and gives the settings that point the app at them."""

from __future__ import annotations

import re
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.fakes import FakeServer, cascade
from tests.fakes.oauth import FacebookOAuthFake, GoogleOAuthFake, TikTokOAuthFake, TokenBook
from tests.fakes.tiktok import TikTokFake
from tests.fakes.youtube import FakeYouTube

try:  # the Instagram Graph fake lands with issue 9; the account lookup is the OAuth fake's own
    from tests.fakes.instagram import InstagramFake
except ImportError:  # pragma: no cover
    InstagramFake = None


@dataclass
class Platforms:
    book: TokenBook
    facebook: FacebookOAuthFake
    tiktok_oauth: TikTokOAuthFake
    tiktok_api: TikTokFake
    google: GoogleOAuthFake
    youtube_api: FakeYouTube
    instagram_api: object | None  # tests.fakes.instagram.InstagramFake once issue 9 lands
    settings: dict

    def oauth(self, platform: str):
        return {"instagram": self.facebook, "tiktok": self.tiktok_oauth,
                "youtube": self.google}[platform]

    def issued_secrets(self) -> list[str]:
        """Every code and token the fakes handed out (for the no-leak checks)."""
        return list(self.book.tokens) + list(self.book.codes)


@contextmanager
def running_platforms(clock=time.time):
    """Start the fakes; yield Platforms whose `settings` go into the app's config."""
    book = TokenBook(clock=clock)
    facebook = FacebookOAuthFake(book, client_id="ig-app-id", client_secret="ig-app-secret")
    tiktok_oauth = TikTokOAuthFake(book, client_id="tt-client-key",
                                   client_secret="tt-client-secret")
    tiktok_api = TikTokFake(token_check=book.check, username="acme.tok", nickname="Acme Tok",
                            processing_seconds=0.0, moderation_seconds=0.0)
    google = GoogleOAuthFake(book, client_id="g-client-id.apps.example",
                             client_secret="g-client-secret")
    youtube_api = FakeYouTube(token_check=book.project)
    instagram_api = InstagramFake(token_check=book.graph_check) if InstagramFake else None
    with ExitStack() as stack:
        fb = stack.enter_context(FakeServer(
            cascade(facebook, instagram_api) if instagram_api else facebook))
        tt = stack.enter_context(FakeServer(cascade(tiktok_oauth, tiktok_api)))
        gg = stack.enter_context(FakeServer(cascade(google, youtube_api)))
        settings = {
            "INSTAGRAM_APP_ID": "ig-app-id", "INSTAGRAM_APP_SECRET": "ig-app-secret",
            "INSTAGRAM_AUTHORIZE_URL": f"{fb.url}/v24.0/dialog/oauth",
            "INSTAGRAM_GRAPH_URL": f"{fb.url}/v24.0",
            "TIKTOK_CLIENT_KEY": "tt-client-key", "TIKTOK_CLIENT_SECRET": "tt-client-secret",
            "TIKTOK_AUTHORIZE_URL": f"{tt.url}/v2/auth/authorize/", "TIKTOK_API_URL": tt.url,
            "GOOGLE_CLIENT_ID": "g-client-id.apps.example",
            "GOOGLE_CLIENT_SECRET": "g-client-secret",
            "GOOGLE_AUTHORIZE_URL": f"{gg.url}/o/oauth2/v2/auth",
            "GOOGLE_TOKEN_URL": f"{gg.url}/token", "GOOGLE_REVOKE_URL": f"{gg.url}/revoke",
            "YOUTUBE_API_URL": gg.url,
        }
        yield Platforms(book, facebook, tiktok_oauth, tiktok_api, google, youtube_api,
                        instagram_api, settings)


def consent(authorize_url: str, decision: str = "approve", granted_scope: str | None = None) -> str:
    """Play the person on the platform's consent page: load it, press Allow (or Cancel); return
    where the platform redirects the browser (the app's callback with code/error and state)."""
    with httpx.Client() as http:
        page = http.get(authorize_url)
        assert page.status_code == 200, page.text
        assert 'id="approve"' in page.text
        form = {"decision": decision}
        if granted_scope is not None:
            form["granted_scope"] = granted_scope
        answer = http.post(authorize_url, data=form)
        assert answer.status_code == 302, answer.text
        return answer.headers["Location"]


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def flashes(html: str) -> list[str]:
    return [re.sub(r"\s+", " ", m) for m in
            re.findall(r'<p class="flash flash-\w+" role="status">([^<]*)</p>', html)]
