"""A supervisor watches the wallboard while an agent's call rings, connects and ends: the figures
move without a reload, and end equal to counts taken from the database."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from agentdesk.models import Agent
from campaigns.models import Disposition
from tests.agentdesk.test_wallboard import expected
from tests.browser.conftest import supervisor_page, watch_console
from tests.browser.test_desk_browser import pick, pick_and_go_ready, shot, sign_in, wait_call

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# A phone ringing, and nothing else: Ryng's Dialing is the agent's phone ringing (until the
# agent picks up: "Agent connected"); the other platforms name their rings.
RINGING = re.compile(r"^(Dialing|Agent phone ringing|Customer ringing)$")


def test_the_wallboard_follows_a_call_live(page: Page, browser, desk):
    campaign = desk.campaigns["ryng"]
    Disposition.objects.filter(campaign=campaign, name="Interested").update(is_conversion=True)
    supervisor = browser.new_context(viewport={"width": 1600, "height": 900})
    problems: list[str] = []
    watch_console(supervisor, problems)
    try:
        board = supervisor_page(supervisor, desk.base_url, "/supervisor/wallboard/")
        agent1 = Agent.objects.get(user__username="agent1")
        row = board.locator(f"#wb-campaign-{campaign.pk}")
        live = board.locator("#wb-live-count")
        expect(live).to_have_text("0")
        board.evaluate("window.__boardDoc = 'same document'")

        def figures_match_the_database():
            for name, value in expected(campaign).items():
                expect(row.locator(f'[data-figure="{name}"]')).to_have_text(value)

        figures_match_the_database()

        sign_in(page, desk.base_url)
        number = pick_and_go_ready(page, campaign)
        expect(board.locator(f".wb-state-ready #wb-agent-{agent1.pk}")).to_be_visible(timeout=15_000)
        # The time in state ticks in the browser, with no frame from the server.
        ticker = board.locator(f"#wb-agent-{agent1.pk} time.ticker")
        first = ticker.inner_text()
        expect(ticker).not_to_have_text(first, timeout=5_000)

        # The agent's phone rings about 10 s (not 2): long enough to be seen ringing on the
        # board, however late the push that shows it, before the call moves on by itself.
        desk.outcome(number, agent_ring_seconds=1000)
        page.click("#btn-dial")
        expect(live).to_have_text("1", timeout=30_000)
        expect(board.locator(".wb-call .sv-badge").first).to_have_text(RINGING, timeout=30_000)
        expect(board.locator(".wb-call").first).to_contain_text("Connected", timeout=30_000)
        expect(board.locator(f".wb-state-on_call #wb-agent-{agent1.pk}")).to_be_visible()
        wait_call(number, {"connected"})
        figures_match_the_database()
        shot(board, "wallboard")
        expect(row.locator('[data-figure="calls"]')).to_contain_text(re.compile(r"^[1-9]\d*/"))

        page.click("#btn-end")
        expect(live).to_have_text("0", timeout=30_000)
        expect(board.locator(f".wb-state-wrap_up #wb-agent-{agent1.pk}")).to_be_visible()
        pick(page, "Interested")
        page.click("#btn-dispose")
        wait_call(number, {"disposed"})
        expect(row.locator('[data-figure="conversions"]')).to_have_text("1", timeout=15_000)
        figures_match_the_database()

        assert board.evaluate("window.__boardDoc") == "same document", "the wallboard reloaded"
        assert not problems, problems
    finally:
        supervisor.close()
