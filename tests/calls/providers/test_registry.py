"""The one registry (``calls.providers.ADAPTERS``): every platform's adapter, its label and
capabilities, and a loud refusal of a platform nobody registered."""

from __future__ import annotations

import pytest

from calls import providers
from calls.models import Platform
from calls.providers import (
    ADAPTERS,
    get_provider,
    per_platform,
    platform_choices,
    platforms_with,
    provider_class,
    provider_classes,
)
from calls.providers.base import IDENTITY_FIELDS, AccountConfig, Provider, UnknownPlatform


def test_every_registered_adapter_names_its_platform_and_describes_itself():
    for name in ADAPTERS:
        cls = provider_class(name)
        assert issubclass(cls, Provider) and cls.platform == name
        assert cls.label and cls.base_url_hint and cls.credentials_hint and cls.campaign_ref_hint
        assert cls.identity_fields and set(cls.identity_fields) <= set(IDENTITY_FIELDS)
        assert cls.receives_callbacks == bool(cls.callback_kinds)


def test_the_platform_choices_come_from_the_registry():
    assert Platform.choices == platform_choices()
    assert [value for value, _ in Platform.choices] == list(ADAPTERS)
    assert Platform(Platform.HUAWEI).label == provider_class("huawei").label


def test_capabilities_select_platforms():
    assert platforms_with("agent_sessions") == ("huawei", "genesys")
    assert platforms_with("takes_pushed_leads") == ("ryng",)
    with pytest.raises(AttributeError, match="no capability"):
        platforms_with("can_fly")


def test_an_unknown_platform_is_refused_loudly_naming_the_known_ones():
    with pytest.raises(UnknownPlatform, match=r"'avaya'.*ryng, huawei, genesys"):
        provider_class("avaya")
    with pytest.raises(UnknownPlatform):
        get_provider(AccountConfig(platform="", base_url="http://x.invalid"))
    with pytest.raises(ValueError):  # UnknownPlatform is a ValueError for callers that catch those
        provider_class(None)  # type: ignore[arg-type]


def test_a_registry_line_that_points_at_another_platform_is_refused(monkeypatch):
    monkeypatch.setitem(providers.ADAPTERS, "ryng2", ADAPTERS["ryng"])
    with pytest.raises(UnknownPlatform, match="registered as 'ryng2'"):
        provider_class("ryng2")


def test_per_platform_hints_label_each_platform():
    text = per_platform("credentials_hint")
    assert all(cls.label in text for cls in provider_classes())
