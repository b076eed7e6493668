"""The browser stack for the supervisor pages: the same package-scoped Playwright fixtures as
tests/browser (so the session's event loop is gone before Channels suites run)."""

from tests.browser.conftest import (  # noqa: F401
    _expect_timeouts,
    _no_htmx_errors,
    browser,
    browser_context_args,
    browser_type,
    browser_type_launch_args,
    launch_browser,
    playwright,
)
from tests.factories import PASSWORD, make_user_agent


def open_campaign_as_supervisor(page, base_url: str, campaign) -> object:
    """Sign a new supervisor in on ``page`` and open ``campaign``'s page; the supervisor."""
    boss = make_user_agent("boss", 9, supervisor=True)
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", boss.user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{base_url}/supervisor/campaigns/{campaign.pk}/")
    return boss
