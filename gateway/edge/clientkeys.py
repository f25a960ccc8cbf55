"""Client keys: who is calling, and which models that key may use.

design.md ("Client keys, limits, CORS, secrets", "Front-end endpoints"): a
client sends its gateway key the way its SDK sends any key: ``Authorization:
Bearer``, ``x-api-key``, ``x-goog-api-key`` or ``?key=``. Every one of these
that the request carries is tried, so a client whose SDK sends two headers
(the Anthropic SDK with both an API key and an auth token) is recognised by
either.

Keys are never kept or compared as text: each configured key is held as its
SHA-256 digest, a presented credential is hashed, and the digests are
compared with :func:`hmac.compare_digest` against every configured key, so
the time taken says nothing about how much of a key matched nor which key
did. A key is read from the settings (``key = "${TEAM_A_KEY}"``) or from a
file (``key_file``, e.g. a mounted Kubernetes Secret; surrounding whitespace
is dropped); its text is gone once the digest is made.

``models`` are glob patterns (:func:`fnmatch.fnmatchcase`: ``*``, ``?``,
``[...]``) over the model name the client sends.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import unquote

import attrs

from gateway.state.protocol import KeyLimits

if TYPE_CHECKING:
    from gateway.config import AuthConfig, AuthKey
    from gateway.server.exchange import Request

__all__ = ["ClientKey", "ClientKeys", "KeyFileError", "key_texts", "presented_credentials"]

#: A key file larger than this is not a key (a wrong path, a mounted directory of files).
MAX_KEY_FILE_BYTES = 4096


class KeyFileError(Exception):
    """A ``key_file`` that cannot be read; the message names the file, never its text."""


@attrs.frozen
class ClientKey:
    """One configured client key, as the edge uses it (its text is not kept).

    Attributes:
        name: its name (in logs, metrics and the usage ledger).
        limits: its rate limits and budgets.
        models: the glob patterns of the models it may use.
        admin: it may read ``GET /v1/usage``.
    """

    name: str
    limits: KeyLimits
    models: tuple[str, ...] = ("*",)
    admin: bool = False
    _pattern: re.Pattern[str] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        joined = "|".join(f"(?:{fnmatch.translate(p)})" for p in self.models)
        object.__setattr__(self, "_pattern", re.compile(joined or "(?!)"))

    def allows(self, model: str) -> bool:
        """Whether this key may use ``model`` (the name the client sent)."""
        return self._pattern.match(model) is not None


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest()


def presented_credentials(request: Request) -> list[str]:
    """Every credential the request carries, in the places SDKs put them."""
    found = []
    auth = request.header(b"authorization")
    if auth and auth[:7].lower() == b"bearer ":
        found.append(auth[7:].strip().decode("utf-8", "surrogateescape"))
    for name in (b"x-api-key", b"x-goog-api-key"):
        value = request.header(name)
        if value:
            found.append(value.strip().decode("utf-8", "surrogateescape"))
    if "key=" in request.query:
        for part in request.query.split("&"):
            if part.startswith("key="):
                found.append(unquote(part[4:], errors="surrogateescape"))
    return [c for c in found if c]


def _read_key_file(entry: AuthKey) -> str:
    try:
        with open(entry.key_file, "rb") as f:
            raw = f.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyFileError(
            f"auth key {entry.name!r}: cannot read key_file {entry.key_file!r}: {exc.strerror}"
        ) from None
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(
            f"auth key {entry.name!r}: key_file {entry.key_file!r} is larger than "
            f"{MAX_KEY_FILE_BYTES} bytes; it should hold the key alone"
        )
    text = raw.decode("utf-8", "replace").strip()
    if not text:
        raise KeyFileError(f"auth key {entry.name!r}: key_file {entry.key_file!r} is empty")
    return text


def key_texts(auth: AuthConfig) -> list[str]:
    """The text of every client key and of the metrics key, for a redactor to remove.

    Only the audit log's ``log_bodies`` needs them (a client may paste a key into a
    prompt); nothing else keeps them. Raises KeyFileError as :class:`ClientKeys` does.
    """
    texts = [entry.key if entry.key else _read_key_file(entry) for entry in auth.keys]
    return [*texts, auth.metrics_key] if auth.metrics_key else texts


class ClientKeys:
    """The configured client keys; empty: the gateway is open.

    Raises KeyFileError (at construction) for a ``key_file`` that cannot be read.
    """

    def __init__(self, auth: AuthConfig) -> None:
        entries: list[tuple[bytes, ClientKey]] = []
        for entry in auth.keys:
            text = entry.key if entry.key else _read_key_file(entry)
            limits = KeyLimits(
                rpm=entry.rpm,
                tpm=entry.tpm,
                concurrency=entry.concurrency,
                tokens_per_day=entry.tokens_per_day,
                tokens_per_month=entry.tokens_per_month,
            )
            key = ClientKey(entry.name, limits, tuple(entry.models), entry.admin)
            entries.append((_digest(text), key))
        self._entries = tuple(entries)
        self.by_name = {key.name: key for _, key in entries}
        self.metrics_digest = _digest(auth.metrics_key) if auth.metrics_key else None

    @property
    def open(self) -> bool:
        """No keys are configured: every request is let in without one."""
        return not self._entries

    @property
    def names(self) -> Sequence[str]:
        return list(self.by_name)

    def identify(self, credentials: Sequence[str]) -> ClientKey | None:
        """The key one of ``credentials`` is, or None; constant time in which key matched."""
        found: ClientKey | None = None
        for credential in credentials[:4]:  # a bounded number of places to look
            digest = _digest(credential)
            for stored, key in self._entries:  # every entry, match or not
                if hmac.compare_digest(stored, digest) and found is None:
                    found = key
        return found

    def is_metrics_key(self, credentials: Sequence[str]) -> bool:
        """Whether one of ``credentials`` is ``auth.metrics_key``."""
        if self.metrics_digest is None:
            return False
        ok = False
        for credential in credentials[:4]:
            ok |= hmac.compare_digest(self.metrics_digest, _digest(credential))
        return ok
