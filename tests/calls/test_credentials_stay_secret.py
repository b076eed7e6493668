"""Platform credentials never reach a log line or an error an agent sees: each adapter fails
against the emulators with distinctive wrong credentials while every logger records at DEBUG
(requests and urllib3 included), and none of the secrets shows up anywhere."""

from __future__ import annotations

import logging

import pytest

from calls.providers import get_provider
from calls.providers.base import AccountConfig, AgentLogin, DialRequest, ProviderError

RYNG_TOKEN = "ryng-TOKEN-d41d8cd9"
HUAWEI_PASSWORD = "huawei-PASS-8f00b204"
GENESYS_PASSWORD = "gws-PASS-e9800998"


def _fail(emulator, platform: str) -> tuple[ProviderError, object]:
    if platform == "ryng":
        provider = get_provider(
            AccountConfig("ryng", f"{emulator.url}/rest-api/v1", credentials={"token": RYNG_TOKEN})
        )
        request = DialRequest(
            agent=AgentLogin(ref="7"),
            number="+12125550100",
            platform_campaign_id="595",
            idempotency_key="secret-probe",
            connect_callback_url="http://127.0.0.1:9/connect",
            terminal_callback_url="http://127.0.0.1:9/terminal",
        )
        action = lambda: provider.dial(request)  # noqa: E731
    elif platform == "huawei":
        provider = get_provider(
            AccountConfig(
                "huawei",
                f"{emulator.url}/agentgateway/resource",
                credentials={"agent_password": HUAWEI_PASSWORD},
            ),
            {},
        )
        action = lambda: provider.sign_in(AgentLogin(ref="101", phone="6001"))  # noqa: E731
    else:
        provider = get_provider(
            AccountConfig("genesys", emulator.url, credentials={"agent_password": GENESYS_PASSWORD}), {}
        )
        action = lambda: provider.sign_in(AgentLogin(ref="agent1", username="agent1"))  # noqa: E731
    with pytest.raises(ProviderError) as caught:
        action()
    return caught.value, provider


@pytest.mark.parametrize("platform", ["ryng", "huawei", "genesys"])
def test_wrong_credentials_fail_without_the_secret_in_logs_errors_or_state(emulator, caplog, platform):
    for name in (None, "urllib3", "requests", "calls", "django"):
        caplog.set_level(logging.DEBUG, logger=name)
    error, provider = _fail(emulator, platform)
    assert error.permanent and error.http_status in (200, 401, 403), error
    shown = " ".join([str(error), repr(error), error.message, error.code, str(provider.state)])
    logged = "\n".join(
        [caplog.text, *(str(r.args) for r in caplog.records), *(r.exc_text or "" for r in caplog.records)]
    )
    assert caplog.records, "nothing was logged at DEBUG: the probe proves nothing"
    for secret in (RYNG_TOKEN, HUAWEI_PASSWORD, GENESYS_PASSWORD):
        assert secret not in shown
        assert secret not in logged
