"""Accessibility: axe-core (vendored under tests/browser/vendor, never served) checks every page,
signed out and signed in, on a laptop and a phone, and fails on any serious or critical
violation."""

from __future__ import annotations

from pathlib import Path

import pytest

from .test_browser_layout import fill_dashboard

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"
BLOCKING = ("serious", "critical")


def violations(page) -> list[str]:
    """The page's serious and critical axe violations, one line each with the elements hit."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("async () => (await axe.run(document)).violations")
    return [f"{v['id']} ({v['impact']}): {v['help']} -> "
            + ", ".join(" ".join(node["target"]) for node in v["nodes"][:5])
            for v in found if v["impact"] in BLOCKING]


@pytest.mark.parametrize("width", [390, 1280])
def test_no_page_has_a_serious_accessibility_violation(open_page, live, width):
    page = open_page(width, email=None)
    found = fill_dashboard(live).visit(page, lambda _name, page: violations(page))
    page.goto("/clips?q=no-such-clip")
    found["clips-empty"] = violations(page)
    assert {name: v for name, v in found.items() if v} == {}
