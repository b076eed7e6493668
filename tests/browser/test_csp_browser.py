"""Every page carries the Content-Security-Policy and renders in Chromium without a violation
(the autouse console watch in conftest fails a test on any "Refused to ..." line)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_desk_browser import pick_and_go_ready, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def visit(page: Page, url: str, shows: str) -> None:
    answer = page.goto(url)
    assert answer is not None and answer.ok, url
    policy = answer.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, (url, policy)
    assert "unsafe-inline" not in policy
    expect(page.locator("body")).to_contain_text(shows)


def sign_in_as(page: Page, base_url: str, username: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "demo")
    page.click("button[type=submit]")


def test_every_page_renders_under_the_policy(page: Page, desk):
    base = desk.base_url
    visit(page, f"{base}/login/", "Sign in")

    # The agent's desk, live: a campaign picked, Ready, a lead previewed (htmx swaps, the socket).
    sign_in(page, base)
    pick_and_go_ready(page, desk.campaigns["ryng"])
    expect(page.locator("#desk-main")).to_be_visible()

    sign_in_as(page, base, "supervisor")
    campaign = desk.campaigns["ryng"]
    for path, shows in (
        ("/supervisor/", "Campaigns"),
        (f"/supervisor/campaigns/{campaign.pk}/", campaign.name),
        (f"/supervisor/campaigns/{campaign.pk}/edit/", campaign.name),
        ("/supervisor/campaigns/new/", "campaign"),
        ("/supervisor/dnc/", "call"),
        ("/supervisor/agents/", "Agents"),
        ("/supervisor/reports/", "Reports"),
        ("/supervisor/reports/?group=agent", "Reports"),
    ):
        visit(page, f"{base}{path}", shows)

    sign_in_as(page, base, "admin")
    visit(page, f"{base}/admin/", "Site administration")
    visit(page, f"{base}/admin/axes/accessattempt/", "access attempt")
