"""Generated hostile input (hypothesis) against every platform signal parser and the webhook:
whatever a platform (or someone posing as one) sends, the parsers answer with signals (``other``
for what they cannot read), the offer reader never raises, and the callback URL answers 200 or
404, never a 500."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calls.models import Call, Platform
from calls.providers import ADAPTERS, get_provider, provider_class
from calls.providers.base import AccountConfig, Signal
from tests.calls.conftest import make_account

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
# Keys the platforms really use, so the generated payloads reach past the first check.
keys = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "callID",
            "event",
            "callbackType",
            "status",
            "legDetails",
            "callStarted",
            "eventType",
            "event",
            "content",
            "callid",
            "data",
            "channel",
            "successful",
            "userData",
            "calls",
            "state",
            "id",
            "phoneNumber",
            "callData",
            "number",
            "custom_fields",
            "dispositionName",
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=6)),
    max_leaves=25,
)
payloads = st.one_of(
    json_values,
    json_values.map(json.dumps),
    st.text(max_size=300),
    st.binary(max_size=300),
    st.just("[" * 5000),
    st.just('{"a":' * 3000),
)


@pytest.mark.parametrize("platform", list(ADAPTERS))
@FUZZ
@given(payload=payloads)
def test_every_parser_reads_anything_into_signals(platform, payload):
    provider = get_provider(AccountConfig(platform, "http://127.0.0.1:9/x", credentials={}), {})
    signals = provider.parse(payload)
    assert isinstance(signals, list)
    for signal in signals:
        assert isinstance(signal, Signal) and signal.kind
        if signal.kind == "offer":
            provider_class(platform).parse_offer(signal.data or {})


@pytest.mark.parametrize("platform", list(ADAPTERS))
@FUZZ
@given(data=st.dictionaries(keys, json_values, max_size=8))
def test_every_offer_reader_takes_any_mapping(platform, data):
    offer = provider_class(platform).parse_offer(data)
    assert offer is not None


@pytest.mark.django_db
@FUZZ
@given(
    body=payloads,
    kind=st.sampled_from(["connect", "terminal", "other", "../../admin"]),
    call=st.text(max_size=40),
)
def test_the_callback_url_answers_anything_without_a_500(body, kind, call):
    account = make_account(Platform.RYNG, "http://127.0.0.1:9")
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    answer = Client().post(
        f"/calls/hooks/ryng/{account.webhook_secret}/{kind}?{urlencode({'call': call})}",
        data=data,
        content_type="application/json",
    )
    assert answer.status_code in (200, 404), answer.status_code
    assert not Call.objects.exists()  # nothing invented a call
    account.delete()
