"""daphne with the server's clock stopped at one instant: ``python -m tests.browser.frozen_daphne
<ISO instant> <daphne arguments>``.

``django.utils.timezone.now`` is replaced before Django or the project is imported, so every
``timezone.now()`` (and every model default that names it) reads the instant. That is what the
desk reads to decide what the agent sees: the lead's local time, the calling window, the callback
picker's minimum, what is due. The process's own timers (Twisted, Redis) keep real time, so the
socket and its pushes work as usual. For tests only: nothing in the project imports this.
"""

from __future__ import annotations

import sys
from datetime import datetime


def freeze(instant: datetime) -> None:
    from django.utils import timezone

    timezone.now = lambda: instant


def main() -> None:
    instant = datetime.fromisoformat(sys.argv[1])
    if instant.tzinfo is None:
        raise SystemExit("the instant needs its zone (e.g. 2026-12-07T23:30:00+00:00)")
    freeze(instant)
    from daphne.cli import CommandLineInterface

    sys.argv = ["daphne", *sys.argv[2:]]
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
