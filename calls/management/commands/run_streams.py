"""``python manage.py run_streams``: the platform event loops (calls/streams.py)."""

from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import BaseCommand

from calls.streams import StreamSupervisor


class Command(BaseCommand):
    help = "Keep one event loop per signed-in platform agent session (see calls/streams.py)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--discover-every", type=float, default=3.0, help="Seconds between looks for new sessions."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        supervisor = StreamSupervisor(discover_every=options["discover_every"])

        def stop(signum: int, frame: Any) -> None:
            supervisor.stop.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        supervisor.run()
