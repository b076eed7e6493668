"""Telephony platform adapters behind one interface (``base.Provider``); see docs/providers.md.

:data:`ADAPTERS` is the one registry: a platform's name (as stored in
``TelephonyAccount.platform``) -> its adapter class. Everything else follows from it: the
``calls.models.Platform`` choices, which sessions ``run_streams`` follows, which platforms
receive callbacks. Adding a platform is one line here (docs/providers.md, the checklist).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from django.utils.module_loading import import_string

from calls.providers.base import AccountConfig, Provider, UnknownPlatform

ADAPTERS: dict[str, str] = {
    "ryng": "calls.providers.ryng.RyngProvider",
    "huawei": "calls.providers.huawei.HuaweiProvider",
    "genesys": "calls.providers.genesys.GenesysProvider",
}


def provider_class(platform: str) -> type[Provider]:
    """The adapter class for ``platform``. An unknown name (an account row whose platform is no
    longer registered, a typo in a fixture) raises :class:`UnknownPlatform` naming the known ones."""
    try:
        path = ADAPTERS[platform]
    except (KeyError, TypeError):
        raise UnknownPlatform(
            f"Unknown telephony platform {platform!r}; registered: {', '.join(ADAPTERS)}"
            " (calls/providers/__init__.py ADAPTERS)."
        ) from None
    cls = import_string(path)
    if cls.platform != platform:
        raise UnknownPlatform(f"{path} says its platform is {cls.platform!r}, registered as {platform!r}.")
    return cls


def provider_classes() -> list[type[Provider]]:
    """Every registered adapter, in registry order."""
    return [provider_class(platform) for platform in ADAPTERS]


def platform_choices() -> list[tuple[str, str]]:
    """``(name, label)`` per registered platform, for ``calls.models.Platform``."""
    return [(cls.platform, cls.label or cls.platform) for cls in provider_classes()]


def platforms_with(capability: str) -> tuple[str, ...]:
    """The platforms whose adapter has ``capability`` (a :class:`Provider` attribute) set."""
    if not hasattr(Provider, capability):
        raise AttributeError(f"Provider has no capability {capability!r}")
    return tuple(cls.platform for cls in provider_classes() if getattr(cls, capability))


def per_platform(hint: str, sep: str = "; ") -> str:
    """One of each adapter's hints (``base_url_hint``, ``credentials_hint`` ...), labelled: the
    help texts of forms and the admin."""
    return sep.join(f"{cls.label}: {getattr(cls, hint)}" for cls in provider_classes() if getattr(cls, hint))


def get_provider(account: AccountConfig, state: MutableMapping[str, Any] | None = None) -> Provider:
    return provider_class(account.platform)(account, state)
