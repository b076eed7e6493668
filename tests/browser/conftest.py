"""Browser tests: Playwright (sync API, pytest-playwright) driving Debian's Chromium against the
real stack (``live_stack``: daphne + Celery workers + run_streams on the test database, next to
the emulators). Rows are created with the demo seed."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.conf import settings

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make between
# browser steps are plain synchronous code, so allow them.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SCREENSHOTS = os.environ.get("DESK_SCREENSHOTS", "") not in ("", "0")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": chromium,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


# pytest-playwright's sync API keeps an asyncio loop running in the main thread for as long as
# its ``playwright`` fixture lives (the whole session by default). Suites that run after this
# package and use ``async_to_sync`` (Channels tests) would then fail, so the browser stack lives
# for this package only.
@pytest.fixture(scope="package")
def playwright(_pw_api_request_contexts) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    if _pw_api_request_contexts:
        _pw_api_request_contexts.instrument(pw)
    yield pw
    pw.stop()


@pytest.fixture(scope="package")
def browser_type(playwright, browser_name):
    return getattr(playwright, browser_name)


@pytest.fixture(scope="package")
def launch_browser(browser_type_launch_args, browser_type):
    def launch(**kwargs):
        return browser_type.launch(**{**browser_type_launch_args, **kwargs})

    return launch


@pytest.fixture(scope="package")
def browser(launch_browser) -> Iterator[object]:
    browser = launch_browser()
    yield browser
    browser.close()


@pytest.fixture(scope="package")
def browser_context_args():
    # A laptop screen. (The plugin's own version needs its session-long ``playwright``.)
    return {"viewport": {"width": 1366, "height": 820}}


@dataclass
class Desk:
    base_url: str
    emulator: object
    campaigns: dict[str, object]

    def outcome(self, number: str, result: str = "answer", **timing) -> None:
        """Script the emulator for one number. Rings last ~2 s real so each state is seen."""
        body = {"number": number, "result": result, "agent_ring_seconds": 200, "ring_seconds": 200}
        body.update(timing)
        if result == "answer":
            body.setdefault("talk_seconds", None)  # until the agent ends the call
        self.emulator.control("POST", "outcomes", body)


@pytest.fixture
def desk(live_stack, emulator, transactional_db) -> Iterator[Desk]:
    from agentdesk.demo import seed_demo
    from campaigns.models import Campaign
    from emulators.demo import load_demo

    settings.DEMO_MODE = True
    try:
        seed_demo(emulator_url=emulator.url)
    finally:
        settings.DEMO_MODE = False
    load_demo(emulator.url, count=6)
    campaigns = {c.account.platform: c for c in Campaign.objects.select_related("account")}
    yield Desk(base_url=live_stack.base_url, emulator=emulator, campaigns=campaigns)


@pytest.fixture(autouse=True)
def _expect_timeouts():
    from playwright.sync_api import expect

    # Generous: the stack runs on two shared cores next to other suites.
    expect.set_options(timeout=20_000)


def page_problem(text: str) -> bool:
    """A console line that means the page broke: an htmx error (a swap that silently did not
    happen) or a Content-Security-Policy violation (a script, style or socket the policy refused)."""
    return "htmx" in text or "Content Security Policy" in text or "Refused to" in text


def watch_console(context, problems: list[str]) -> None:
    """Collect every page's problems in a browser context (pages opened later included)."""
    context.on(
        "console", lambda message: problems.append(message.text) if page_problem(message.text) else None
    )


@pytest.fixture(autouse=True)
def _no_htmx_errors(request):
    """Fail a test whose pages logged an htmx error or a CSP violation."""
    if "page" not in request.fixturenames:
        yield
        return
    page = request.getfixturevalue("page")
    problems: list[str] = []
    watch_console(page.context, problems)
    yield
    assert not problems, problems


def supervisor_page(context, base_url: str, path: str):
    """A page of ``context`` signed in as the demo supervisor, at ``path``."""
    page = context.new_page()
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", "supervisor")
    page.fill("#id_password", "demo")
    page.click("button[type=submit]")
    page.goto(f"{base_url}{path}")
    return page
