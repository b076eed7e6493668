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
