"""Project-wide fixtures. Platform fixtures live in ``tests/emulator_fixtures.py``."""

from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from tests.emulator_fixtures import callback_sink, emulator, emulator_process  # noqa: F401
from tests.process_fixtures import live_stack  # noqa: F401


@pytest.fixture
def local_midday():
    """The current time zone set to one where it is about midday now (picked for the moment the
    test runs): a test that puts things minutes or hours before now, "today", then holds at any
    hour the suite runs. (The wallboard's figures failed from 00:00 to 01:30 UTC: a call 90
    minutes old, held at midnight, counted in the last hour.)"""
    offset = 12 - timezone.now().hour  # local time = UTC + offset hours
    with timezone.override(ZoneInfo(f"Etc/GMT{-offset:+d}")):  # Etc/GMT+N is UTC-N
        yield
