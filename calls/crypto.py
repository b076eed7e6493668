"""Platform credentials encrypted at rest with a key derived from ``SECRET_KEY``.

Credentials are stored as a Fernet token; they are decrypted only inside the calls engine when an
adapter is built, and never rendered, logged or sent to a browser.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet() -> Fernet:
    digest = hashlib.sha256(b"agentdesk-credentials:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(data: dict[str, Any]) -> str:
    return _fernet().encrypt(json.dumps(data).encode()).decode()


def decrypt(token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise ValueError("platform credentials cannot be decrypted: was SECRET_KEY changed?") from None
