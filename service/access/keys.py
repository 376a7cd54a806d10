"""API keys: generation, hashing (SHA-256 of a random secret) and constant-time checks."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

KEY_PREFIX = "reid"
PREFIX_CHARS = 12


@dataclass(frozen=True)
class NewKey:
    """A freshly generated key: the full secret (shown once), its lookup prefix and its hash."""

    secret: str
    prefix: str
    key_hash: str


def hash_key(secret: str) -> str:
    """Hex SHA-256 of a key."""
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_key() -> NewKey:
    """A new store key ``reid_<prefix>_<secret>``; only its hash and prefix are stored."""
    prefix = secrets.token_hex(PREFIX_CHARS // 2)
    secret = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(secret=secret, prefix=prefix, key_hash=hash_key(secret))


def key_prefix(secret: str) -> str | None:
    """The lookup prefix of a presented key, or None when it is not shaped like a store key."""
    parts = secret.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != PREFIX_CHARS:
        return None
    return parts[1]


def matches_hash(secret: str, key_hash: str) -> bool:
    """Constant-time comparison of a presented key with a stored hash."""
    return hmac.compare_digest(hash_key(secret), key_hash)


def matches_admin(secret: str, admin_key: str) -> bool:
    """Constant-time comparison of a presented key with the admin key."""
    return hmac.compare_digest(secret.encode(), admin_key.encode())
