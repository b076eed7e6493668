"""Telephony platform adapters behind one interface (``base.Provider``); see docs/providers.md."""

from __future__ import annotations

import importlib
from collections.abc import MutableMapping
from typing import Any

from calls.providers.base import AccountConfig, Provider

PLATFORMS = {
    "ryng": ("calls.providers.ryng", "RyngProvider"),
    "huawei": ("calls.providers.huawei", "HuaweiProvider"),
    "genesys": ("calls.providers.genesys", "GenesysProvider"),
}


def provider_class(platform: str) -> type[Provider]:
    try:
        module_name, class_name = PLATFORMS[platform]
    except KeyError:
        raise ValueError(f"unknown telephony platform {platform!r}") from None
    return getattr(importlib.import_module(module_name), class_name)


def get_provider(account: AccountConfig, state: MutableMapping[str, Any] | None = None) -> Provider:
    return provider_class(account.platform)(account, state)
