"""In the browser: an admin adds an account, then its credentials; the values never come back."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .conftest import screenshot

pytestmark = pytest.mark.browser

ACCESS_TOKEN = "IGQVJ-secret-access-token-4f1c9b"
INSTAGRAM_ACCOUNT_ID = "17841400000000042"


def test_add_an_account_and_its_credentials(admin_page: Page, live):
    page = admin_page
    page.goto("/accounts/")
    page.click("#add-account")

    page.select_option("#platform", "instagram")
    page.fill("#handle", "acme.sports")
    page.fill("#display_name", "Acme Sports")
    expect(page.locator("#parent_account_id")).to_have_value("")  # a main account
    expect(page.locator("#active")).to_be_checked()
    page.click("#account-submit")

    expect(page.locator("#flashes")).to_contain_text("Added Instagram account @acme.sports")
    row = page.locator("tr[id^=account-]", has_text="@acme.sports")
    expect(row).to_have_count(1)
    expect(row.locator(".mode-badge")).to_have_attribute("data-mode", "none")
    expect(row.locator(".mode-badge")).to_have_text("simulator")

    row.locator("a.account-credentials").click()
    form = page.locator("#credentials-form")
    # Exactly Instagram's fields, as password inputs.
    expect(form.locator("input[type=password]")).to_have_count(3)
    for key in ("access_token", "instagram_account_id", "facebook_page_id"):
        expect(form.locator(f"#{key}")).to_have_attribute("type", "password")

    # Half the required keys: incomplete, and the simulator still publishes.
    page.fill("#access_token", ACCESS_TOKEN)
    page.click("#credentials-submit")
    expect(page.locator("#credentials-mode")).to_have_attribute("data-mode", "incomplete")
    expect(page.locator("#credential-keys-missing")).to_have_text("Instagram account ID")

    # Saving merges: typing only the missing key keeps the stored token.
    page.fill("#instagram_account_id", INSTAGRAM_ACCOUNT_ID)
    page.click("#credentials-submit")
    expect(page.locator("#credentials-mode")).to_have_attribute("data-mode", "complete")
    expect(page.locator("#credentials-mode")).to_have_text("provider ready")
    expect(page.locator("#credential-keys-set")).to_have_text("Access token, Instagram account ID")
    expect(page.locator("#access_token")).to_have_value("")  # never filled back in
    screenshot(page, "credentials")
    assert_secrets_absent(page)

    page.goto("/accounts/")
    badge = page.locator("tr[id^=account-]", has_text="@acme.sports").locator(".mode-badge")
    expect(badge).to_have_attribute("data-mode", "complete")
    expect(badge).to_have_text("provider ready")
    assert_secrets_absent(page)

    # Remove them (the page asks first): back to the simulator.
    page.locator("a.account-credentials").click()
    page.click("#remove-credentials")
    expect(page.locator("#confirm-question")).to_have_text("Remove the credentials of @acme.sports?")
    page.click("#confirm-yes")
    expect(page.locator("#credentials-mode")).to_have_attribute("data-mode", "none")
    expect(page.locator("#credentials-mode")).to_have_text(re.compile("simulator"))


def assert_secrets_absent(page: Page) -> None:
    html = page.content()
    assert ACCESS_TOKEN not in html
    assert INSTAGRAM_ACCOUNT_ID not in html
