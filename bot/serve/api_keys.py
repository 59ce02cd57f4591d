"""The API-key rule of the OpenAI-compatible API and of /mcp: open without QABOT_API_KEYS, else a Bearer key."""

from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import Iterable

logger = logging.getLogger(__name__)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def key_allowed(keys: Iterable[str], authorization: str | None) -> bool:
    """True when no key is configured, or the header carries one of `keys`.

    Every key is compared, in constant time, so the time taken says nothing about which key came close."""
    keys = tuple(keys)
    if not keys:
        return True
    token = bearer_token(authorization)
    given = (token or "").encode("utf-8")
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, key.encode("utf-8"))
    return matched and token is not None


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warn_if_open(keys: Iterable[str], host: str) -> None:
    """Log once at start when the chat API and /mcp are reachable beyond this machine without a key."""
    if not tuple(keys) and not is_loopback(host):
        logger.warning("the OpenAI-compatible API (/v1) and /mcp are open to anyone who can reach %s; set "
                       "QABOT_API_KEYS to require a key", host)
