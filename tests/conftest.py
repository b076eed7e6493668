"""Project-wide fixtures. Platform fixtures live in ``tests/emulator_fixtures.py``."""

from tests.emulator_fixtures import callback_sink, emulator, emulator_process  # noqa: F401
from tests.process_fixtures import live_stack  # noqa: F401
