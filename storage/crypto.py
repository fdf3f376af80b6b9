"""Encryption at rest for free text (comments, message bodies waiting in the outbox, names).

Keys come from `RAPPORT_ENCRYPTION_KEY`: one or more keys (32 url-safe base64-encoded bytes, as
`rapport keys generate` prints them) separated by commas. The first key encrypts; every key
decrypts, so a key is rotated by putting the new one first and re-encrypting at leisure
(`rapport keys rotate`).

Texts are sealed with AES-256-GCM (`cryptography`'s AESGCM) under a key derived from each
configured key with HKDF-SHA256. A token is a version byte (1), a 4-byte key id, a 12-byte random
nonce, then the ciphertext and its tag; the version and key id are authenticated with it. AESGCM
keeps its key schedule, so one encryption costs a few µs (Fernet, which builds its cipher and MAC
afresh for every token, cost several times that), and each outgoing message is one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NAMES_KEPT = 1024

VERSION = b"\x01"
"""The first byte of a token."""
_KEY_BYTES = 32
_HKDF_INFO = b"rapport: text at rest, AES-256-GCM, v1"
_NONCE = 12
_HEADER = len(VERSION) + 4


class KeyError_(ValueError):
    """A key in the configured list is not a valid key."""


def undecryptable(exc: BaseException) -> bool:
    """Whether `exc` is `Cipher.decrypt`'s: a stored text none of the configured keys opens.
    (It stays a plain ValueError: logs and outbox rows name failures by that type.)"""
    return isinstance(exc, ValueError) and isinstance(exc.__cause__, InvalidTag)


@dataclass(frozen=True)
class _Key:
    id: bytes  # 4 bytes in each token: which configured key sealed it
    aead: AESGCM


def _derive(raw: bytes) -> _Key:
    secret = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(raw)
    return _Key(hashlib.sha256(b"rapport key id:" + secret).digest()[:4], AESGCM(secret))


class Cipher:
    def __init__(self, keys: str | list[str]) -> None:
        items = [k.strip() for k in (keys.split(",") if isinstance(keys, str) else keys)]
        items = [k for k in items if k]
        if not items:
            raise KeyError_("no encryption key given")
        try:
            raws = [base64.urlsafe_b64decode(k.encode()) for k in items]
        except (ValueError, binascii.Error) as exc:
            raise KeyError_("each key must be 32 url-safe base64-encoded bytes") from exc
        if any(len(raw) != _KEY_BYTES for raw in raws):
            raise KeyError_("each key must be 32 url-safe base64-encoded bytes")
        self._keys = [_derive(raw) for raw in raws]
        # The first configured key wins should two ids ever collide (about 1 in 4 billion).
        self._by_id = {key.id: key for key in reversed(self._keys)}
        self._names: OrderedDict[bytes, str] = OrderedDict()

    @staticmethod
    def generate_key() -> str:
        return base64.urlsafe_b64encode(os.urandom(_KEY_BYTES)).decode()

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The configured keys' ids (hex), first the one that encrypts: what the database and
        messages name a key by. An id is a hash of the derived secret, never the key."""
        return tuple(dict.fromkeys(key.id.hex() for key in self._keys))

    def encrypt(self, text: str) -> bytes:
        return self._seal(self._keys[0], text)

    def encrypt_with(self, key_id: str, text: str) -> bytes:
        """Seal with the configured key of that id (a key canary for each key)."""
        return self._seal(self._by_id[bytes.fromhex(key_id)], text)

    @staticmethod
    def sealed_by(token: bytes) -> str | None:
        """The id of the key a token names in its header; None for anything else."""
        data = bytes(token)
        return data[1:_HEADER].hex() if data[:1] == VERSION and len(data) > _HEADER else None

    def opener(self, token: bytes) -> str | None:
        """The id of the configured key that opens the token, or None if none does."""
        data = bytes(token)
        try:
            self._open(data)
        except InvalidTag:
            return None
        return data[1:_HEADER].hex()

    def _seal(self, key: _Key, text: str) -> bytes:
        header = VERSION + key.id
        nonce = os.urandom(_NONCE)
        return header + nonce + key.aead.encrypt(nonce, text.encode("utf-8"), header)

    def decrypt(self, token: bytes) -> str:
        try:
            return self._open(bytes(token)).decode("utf-8")
        except InvalidTag as exc:
            raise ValueError("stored text cannot be decrypted with the configured keys") from exc

    def _open(self, data: bytes) -> bytes:
        header, nonce, sealed = (
            data[:_HEADER],
            data[_HEADER : _HEADER + _NONCE],
            data[_HEADER + _NONCE :],
        )
        key = self._by_id.get(header[len(VERSION) :])
        if header[:1] != VERSION or key is None or len(nonce) != _NONCE:
            raise InvalidTag
        return key.aead.decrypt(nonce, sealed, header)

    def decrypt_name(self, token: bytes) -> str:
        """A therapist's name, which goes into nearly every message to their clients: decrypted
        once per process rather than once per update (a few hundred names at most)."""
        key = bytes(token)
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = self.decrypt(key)
            if len(self._names) > NAMES_KEPT:
                self._names.popitem(last=False)
        return name

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt with the first key (key rotation)."""
        return self.encrypt(self.decrypt(token))
