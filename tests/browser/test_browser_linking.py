"""In the browser: an admin connects one account per platform in two clicks (Connect, then Allow
on the platform's consent page), sees who is connected, publishes to it, is told why a denied
consent or a forged answer changed nothing, and disconnects. The platforms are the OAuth fakes on real HTTP."""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
from playwright.sync_api import Page, expect

from dashboard.credentials import get_account_credentials
from dashboard.models import SocialAccount
from tests.linking_support import running_platforms

from .conftest import screenshot
from .test_browser_publishing import choose_account

pytestmark = pytest.mark.browser

CONNECTED_AS = {"instagram": "@acme.reels", "tiktok": "Acme Tok (@acme.tok)",
                "youtube": "Acme Shorts"}


@contextmanager
def platforms_for(live):
    """The fakes, with the live app pointed at them; the app's settings restored afterwards."""
    with running_platforms() as fakes:
        previous = {key: live.app.config.get(key) for key in fakes.settings}
        live.app.config.update(fakes.settings)
        try:
            yield fakes
        finally:
            live.app.config.update(previous)


def test_connect_one_account_per_platform_in_two_clicks(admin_page: Page, live):
    page = admin_page
    with platforms_for(live) as fakes:
        for platform, connected_as in CONNECTED_AS.items():
            page.goto("/accounts/")
            expect(page.locator(f"#link-{platform} .redirect-uri")).to_have_text(
                f"{live.url}/accounts/connect/{platform}/callback")
            page.click(f"#connect-{platform}")
            expect(page.locator("#approve")).to_be_visible()  # the platform's consent page
            page.click("#approve")
            expect(page).to_have_url(re.compile(r"/accounts/"))
            expect(page.locator("#flashes")).to_contain_text("Connected")
            expect(page.locator(f"#platform-{platform} .connected-as")).to_have_text(
                f"Connected as {connected_as}")
            expect(page.locator(f"#platform-{platform} .token-expiry")).to_contain_text(
                "expires in")
        screenshot(page, "accounts-linked")
        html = page.content()
        assert [s for s in fakes.issued_secrets() if s in html] == []
        with live.db() as session_db:
            linked = session_db.session.query(SocialAccount).all()
            assert sorted(a.platform for a in linked) == sorted(CONNECTED_AS)
            for account in linked:
                token = get_account_credentials(session_db, account.id)["access_token"]
                assert fakes.book.check(token)  # the platform's API accepts it

        # The connected account publishes (its provider client is ready).
        tiktok_id = next(a.id for a in linked if a.platform == "tiktok")
        page.goto(f"/clips/{live.add_clip('Launch teaser')}")
        choose_account(page, "tiktok", tiktok_id)
        page.fill("#caption", "New range, out now")
        page.click("#publish-button")
        expect(page.locator("#publish-result #publish-success")).to_be_visible()

        # Disconnect TikTok: revoked at TikTok, forgotten here.
        page.goto("/accounts/")
        row = page.locator("tr[id^=account-]", has_text="@acme.tok")
        row.locator("button.disconnect-account").click()
        page.click("#confirm-yes")  # the page asks first
        expect(page.locator("#flashes")).to_contain_text("TikTok confirmed the token is revoked")
        expect(page.locator("tr[id^=account-]", has_text="@acme.tok")
               .locator(".token-health")).to_have_text("not connected")


def test_a_denied_consent_and_a_forged_answer_change_nothing(admin_page: Page, live):
    page = admin_page
    with platforms_for(live):
        page.goto("/accounts/")
        page.click("#connect-youtube")
        page.click("#deny")
        expect(page.locator("#flashes")).to_contain_text(
            "YouTube consent was not given (access_denied")
        expect(page.locator("#platform-youtube")).to_contain_text("No YouTube accounts yet.")

        page.click("#connect-tiktok")
        expect(page.locator("#approve")).to_be_visible()
        # Allow on the consent page, but arrive back with another state than the one started here.
        answer = page.request.post(page.url, form={"decision": "approve"}, max_redirects=0)
        callback = answer.headers["location"]
        page.goto(re.sub(r"state=[^&]+", "state=forged", callback))
        expect(page.locator("#flashes")).to_contain_text("state mismatch")
        expect(page.locator("#platform-tiktok")).to_contain_text("No TikTok accounts yet.")
