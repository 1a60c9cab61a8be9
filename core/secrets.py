"""Credential storage. A secret value lives only here (and, for one step, in its worker).

``SecretStore`` is the interface; ``LocalSecretStore`` is the embedded default: one file
of Fernet-encrypted entries, its key from ``CASTRA_SECRETS_KEY`` or ``data_dir/secrets.key``
(created on first start, mode 0600). AWS Secrets Manager comes behind the same interface.
This module must never log, return or raise anything that contains a secret value.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.fernet import Fernet, InvalidToken
from pydantic import TypeAdapter

from core.errors import NotFound, Unavailable
from core.models import Credential, CredentialKind, Model
from core.settings import Settings

CREDENTIAL = TypeAdapter[Credential](Credential)


class CredentialSummary(Model):
    name: str
    kind: CredentialKind
    allowed_hosts: list[str] = []
    updated_at: datetime


class SecretStore(Protocol):
    async def put(self, tenant_id: str, name: str, credential: Credential) -> CredentialSummary: ...
    async def get(self, tenant_id: str, name: str) -> Credential: ...
    async def list(self, tenant_id: str) -> list[CredentialSummary]: ...
    async def delete(self, tenant_id: str, name: str) -> None: ...


class LocalSecretStore:
    def __init__(self, path: Path, key: bytes) -> None:
        self._path = path
        self._fernet = Fernet(key)
        self._lock = asyncio.Lock()

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data: dict[str, dict[str, Any]] = json.loads(self._path.read_text())
            return data
        except FileNotFoundError:
            return {}

    def _save(self, entries: dict[str, dict[str, Any]]) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(entries, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)

    @staticmethod
    def _summary(name: str, entry: dict[str, Any]) -> CredentialSummary:
        return CredentialSummary(
            name=name,
            kind=entry["kind"],
            allowed_hosts=entry.get("allowed_hosts", []),
            updated_at=entry["updated_at"],
        )

    async def put(self, tenant_id: str, name: str, credential: Credential) -> CredentialSummary:
        token = self._fernet.encrypt(json.dumps(credential.reveal()).encode()).decode()
        entry = {
            "kind": credential.kind,
            "allowed_hosts": credential.allowed_hosts,
            "updated_at": datetime.now(UTC).isoformat(),
            "token": token,
        }
        async with self._lock:
            entries = self._load()
            entries[f"{tenant_id}/{name}"] = entry
            await asyncio.to_thread(self._save, entries)
        return self._summary(name, entry)

    async def get(self, tenant_id: str, name: str) -> Credential:
        entry = self._load().get(f"{tenant_id}/{name}")
        if entry is None:
            raise NotFound(f"credential {name!r} not found")
        try:
            plain = self._fernet.decrypt(entry["token"].encode())
        except InvalidToken:
            raise Unavailable("the secret store key does not match its file") from None
        return CREDENTIAL.validate_json(plain)

    async def list(self, tenant_id: str) -> list[CredentialSummary]:
        prefix = f"{tenant_id}/"
        return sorted(
            (
                self._summary(key[len(prefix) :], entry)
                for key, entry in self._load().items()
                if key.startswith(prefix)
            ),
            key=lambda s: s.name,
        )

    async def delete(self, tenant_id: str, name: str) -> None:
        async with self._lock:
            entries = self._load()
            if entries.pop(f"{tenant_id}/{name}", None) is None:
                raise NotFound(f"credential {name!r} not found")
            await asyncio.to_thread(self._save, entries)


def _local_key(settings: Settings) -> bytes:
    if settings.secrets_key:
        return settings.secrets_key.encode()
    path = settings.data_dir / "secrets.key"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key


def secret_store(settings: Settings) -> SecretStore:
    return LocalSecretStore(settings.data_dir / "secrets.json", _local_key(settings))
