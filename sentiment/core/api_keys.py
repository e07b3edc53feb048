"""API keys as every layer sees them. A key is made once and shown once; the service keeps only its SHA-256
digest (a random 256-bit key needs no salt or slow hash) and its first characters, which tell keys apart on
the pages and in the metrics without being enough to use one."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from uuid import UUID

import msgspec

KEY_START = "sk_"
PREFIX_LENGTH = 8
MAX_NAME_LENGTH = 100
MAX_RATE_PER_MINUTE = 1_000_000


class ApiKey(msgspec.Struct, frozen=True):
    """A key's record: never the key itself, nor its digest."""

    id: UUID
    name: str
    prefix: str
    rate_per_minute: int | None  # requests that score text, per minute; None: the service-wide limit only
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    requests: int
    texts: int

    @property
    def label(self) -> str:
        """How logs and metrics name the key: its name and its prefix, never more of it."""
        return f"{self.name} ({self.prefix}…)"


def new_key() -> str:
    return KEY_START + secrets.token_urlsafe(32)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def display_prefix(key: str) -> str:
    return key[:PREFIX_LENGTH]
