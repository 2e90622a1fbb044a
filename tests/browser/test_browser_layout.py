"""Phones and small laptops: every page fits 390, 768, 1280 and 1920 px without the page
scrolling sideways (a table may scroll inside its own box), the menu collapses on a phone and
works without JavaScript, and the history's row actions are not cut off on a laptop."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from dashboard import accounts
from dashboard.models import LedgerEvent, PublishLog, User, utcnow
from dashboard.publishing import background
from dashboard.schemas import AccountPatch
from dashboard.users import create_token, revoke_token

from .conftest import ADMIN_EMAIL, screenshot, sign_in

pytestmark = pytest.mark.browser

WIDTHS = (390, 768, 1280, 1920)
T = TypeVar("T")
LONG_TITLE = "Spring launch teaser: the whole team on the pitch, extended director's cut"


@dataclass
class Tour:
    """A filled-in dashboard: one of everything each page lists, with long names."""

    clip_id: uuid.UUID
    account_id: uuid.UUID
    batch_id: uuid.UUID
    event_id: uuid.UUID
    user_id: uuid.UUID
    attempt_id: uuid.UUID  # the clip's failed publish (its page is where a Retry without JavaScript goes)

    def pages(self) -> dict[str, str]:
        """Every page a signed-in admin can open, by the name of its screenshot."""
        return {
            "home": "/",
            "accounts": "/accounts/",
            "account-new": "/accounts/new",
            "account-edit": f"/accounts/{self.account_id}/edit",
            "credentials": f"/accounts/{self.account_id}/credentials",
            "clips": "/clips",
            "clip-new": "/clips/new",
            "clip-edit": f"/clips/{self.clip_id}/edit",
            "clip-page": f"/clips/{self.clip_id}",
            "clip-attempt": f"/clips/{self.clip_id}/attempts/{self.attempt_id}",
            "schedule": "/schedule",
            "history": "/history",
            "ledger": "/ledger",
            "ledger-event": f"/ledger/{self.event_id}",
            "batch": f"/batches/{self.batch_id}",
            "tokens": "/tokens/",
            "users": "/users/",
            "user-new": "/users/new",
            "profile": "/profile",
            "profile-password": "/profile/password",
            "user-password": f"/users/{self.user_id}/password",
        }

    def visit(self, page: Page, look: Callable[[str, Page], T]) -> dict[str, T]:
        """Open the sign-in page, sign in, then open every page: what `look(name, page)` saw on
        each, by name."""
        page.goto("/login")
        seen = {"login": look("login", page)}
        sign_in(page)
        for name, path in self.pages().items():
            page.goto(path)
            seen[name] = look(name, page)
        return seen


def fill_dashboard(live) -> Tour:
    """Accounts (a main one with satellites, an inactive one), clips, every kind of history row,
    a cross-post with a failed and an unconfirmed target, a scheduled and a cancelled post, an
    active and a revoked token and a second user."""
    main = live.add_account("instagram", "acme.sports.official.worldwide", display_name="Acme Sports")
    satellite = live.add_account("instagram", "acme.sports.deutschland", parent_account_id=main)
    tiktok = live.add_account("tiktok", "acme.sports.tiktok.highlights")
    archive = live.add_account("youtube", "acme.sports.archive")
    clip_id = live.add_clip(LONG_TITLE, description="A long description " * 10)
    for n in range(3):
        live.add_clip(f"Match recap {n}: {LONG_TITLE}")
    live.publish(clip_id, main)
    live.publish(clip_id, tiktok, platform="tiktok", fail=True)
    live.create_user("editor.with.a.long.address@example.com", "editor")
    with live.db() as db:
        target = background.Target
        batch = background.create_batch(db, clip_id, [
            target("instagram", main, "Caption for the main account", ["launch"]),
            target("instagram", satellite, "Caption für Deutschland", ["start"]),
            target("tiktok", tiktok, "", []),
        ])
        batch_id = batch.id
        rows = list(db.session.scalars(select(PublishLog).where(PublishLog.batch_id == batch_id)
                                       .order_by(PublishLog.platform, PublishLog.caption)))
        rows[0].status, rows[0].error_message = "unconfirmed", "timeout after the upload finished"
        rows[1].status, rows[1].error_message = "failed", "The platform refused the caption: too many tags"
        rows[2].status = "success"
        rows[2].external_url = "https://www.tiktok.com/@acme.sports.tiktok.highlights/video/7312345678901234567"
        db.session.commit()
        background.schedule_publish(db, clip_id, target("instagram", main, "Later", []),
                                    utcnow() + timedelta(days=1))
        cancelled = background.schedule_publish(db, clip_id, target("tiktok", tiktok, "Never", []),
                                                utcnow() + timedelta(days=2))
        background.cancel(db, cancelled.id)
        accounts.update_account(db, archive, AccountPatch(active=False))
        event_id = db.session.scalar(select(LedgerEvent.id).order_by(LedgerEvent.created_at.desc()).limit(1))
        user_id = db.session.scalar(select(User.id).where(User.email == ADMIN_EMAIL))
        create_token(db, user_id, "continuous integration deploy token")
        revoke_token(db, user_id, create_token(db, user_id, "old laptop").token.id)
        editor_id = db.session.scalar(select(User.id).where(User.email == "editor.with.a.long.address@example.com"))
        attempt_id = db.session.scalar(select(PublishLog.id).where(
            PublishLog.status == "failed", PublishLog.batch_id.is_(None)))
    return Tour(clip_id=clip_id, account_id=main, batch_id=batch_id, event_id=event_id, user_id=editor_id,
                attempt_id=attempt_id)


@pytest.fixture
def tour(live) -> Tour:
    return fill_dashboard(live)


def overflow(page: Page) -> int:
    """How many pixels the page is wider than the window (0 when it fits)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_fits_the_window(open_page, tour, width):
    def too_wide(name: str, page: Page) -> int:
        if name != "login":
            expect(page.locator("main h1").first).to_be_visible()
        if width == 390:
            screenshot(page, f"phone-{name}")
        return overflow(page)

    found = tour.visit(open_page(width, email=None), too_wide)
    assert {name: px for name, px in found.items() if px > 0} == {}


def test_the_phone_menu_opens_and_navigates_without_javascript(open_page):
    page = open_page(390, java_script_enabled=False)
    clips_link = page.locator("#site-menu a", has_text="Clips")
    expect(clips_link).to_be_hidden()
    page.click("#menu-button")
    expect(clips_link).to_be_visible()
    expect(page.locator("#site-menu button", has_text="Sign out")).to_be_visible()
    screenshot(page, "phone-menu")
    clips_link.click()
    expect(page).to_have_url(re.compile(r"/clips$"))
    # The URL changes when the navigation commits, before the page and its stylesheet are in:
    # measured then, an unstyled table is wider than the phone.
    page.wait_for_load_state("load")
    expect(page.locator("main h1").first).to_be_visible()
    assert overflow(page) <= 0


def test_the_desktop_menu_shows_every_link(open_page):
    page = open_page(1280)
    expect(page.locator("#menu-button")).to_be_hidden()
    for label in ("Home", "Accounts", "Clips", "Schedule", "History", "Ledger", "Users",
                  "API tokens", "Profile"):
        expect(page.locator("#site-menu a", has_text=label).first).to_be_visible()


@pytest.mark.parametrize("width", [1280, 1366])
def test_mark_as_published_is_not_cut_off_on_a_laptop(open_page, tour, width):
    page = open_page(width)
    page.goto("/history")
    button = page.locator("#history-table .mark-button").first
    expect(button).to_be_visible()
    box = button.bounding_box()
    wrap = page.locator("#history-results .table-wrap").bounding_box()
    # Inside the window and inside the table's own box, without scrolling it.
    assert box["x"] >= wrap["x"] and box["x"] + box["width"] <= wrap["x"] + wrap["width"]
    assert box["x"] + box["width"] <= width
    assert overflow(page) <= 0
