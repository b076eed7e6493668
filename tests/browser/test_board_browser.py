"""A supervisor watches the agents board while an agent works: rows change without a reload."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from agentdesk.models import Agent
from tests.browser.conftest import supervisor_page, watch_console
from tests.browser.test_desk_browser import pick_and_go_ready, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_board_follows_an_agent_live(page: Page, browser, desk):
    supervisor = browser.new_context(viewport={"width": 1366, "height": 820})
    problems: list[str] = []
    watch_console(supervisor, problems)
    try:
        board = supervisor_page(supervisor, desk.base_url, "/supervisor/agents/")
        agent1 = Agent.objects.get(user__username="agent1")
        row = board.locator(f"#agent-row-{agent1.pk}")
        expect(row).to_contain_text("Offline")
        board.evaluate("window.__boardDoc = 'same document'")

        sign_in(page, desk.base_url)
        number = pick_and_go_ready(page, desk.campaigns["ryng"])
        expect(row).to_contain_text("Ready", timeout=15_000)

        desk.outcome(number)
        page.click("#btn-dial")
        expect(row).to_contain_text("On call", timeout=30_000)
        expect(row).to_contain_text("Connected", timeout=30_000)
        expect(row.locator("td.num").first).to_have_text("1")
        assert board.evaluate("window.__boardDoc") == "same document", "the board reloaded"
        assert not problems, problems
    finally:
        supervisor.close()


def test_a_supervisor_sets_an_agent_not_ready_then_signs_them_out_and_the_desk_says_so(
    page: Page, browser, desk
):
    supervisor = browser.new_context(viewport={"width": 1366, "height": 820})
    problems: list[str] = []
    watch_console(supervisor, problems)
    try:
        sign_in(page, desk.base_url)
        pick_and_go_ready(page, desk.campaigns["ryng"])
        board = supervisor_page(supervisor, desk.base_url, "/supervisor/agents/")
        board.on("dialog", lambda dialog: dialog.accept())  # hx-confirm asks first
        agent1 = Agent.objects.get(user__username="agent1")
        row = board.locator(f"#agent-row-{agent1.pk}")
        expect(row).to_contain_text("Ready")

        row.locator("select[name=reason]").select_option("Coaching")
        row.locator(".board-not-ready").click()
        expect(page.locator("#desk-alert")).to_contain_text("set you Not ready: Coaching.", timeout=15_000)
        expect(page.locator("#desk-presence")).to_have_attribute("data-presence", "not_ready")
        expect(row).to_contain_text("Not ready")

        board.locator(f"#agent-row-{agent1.pk} .board-sign-out").click()
        expect(page.locator("#desk-alert")).to_contain_text("signed you out.", timeout=15_000)
        expect(page.locator("#desk-presence")).to_have_attribute("data-presence", "offline")
        expect(row).to_contain_text("Offline")
        audit = board.context.new_page()
        audit.goto(f"{desk.base_url}/supervisor/audit/")
        newest = audit.locator("#audit-log tbody tr")
        expect(newest.nth(0)).to_contain_text("Signed out")
        expect(newest.nth(1)).to_contain_text("Set Not ready")
        assert not problems, problems
    finally:
        supervisor.close()
