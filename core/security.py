"""API keys: random, shown once, stored only as a SHA-256 hash.

The keys carry 256 bits of randomness, so a fast hash is enough (no password stretching):
guessing is hopeless, and a leaked database leaks no usable key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_key(prefix: str) -> str:
    """A fresh key such as ``ck_…`` (tenant) or ``cw_…`` (worker): 32 random bytes."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
