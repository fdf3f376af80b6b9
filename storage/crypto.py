"""Encryption at rest for free text (comments, message bodies waiting in the outbox, names).

Keys come from `RAPPORT_ENCRYPTION_KEY`: one or more Fernet keys separated by commas. The first key
encrypts; every key decrypts, so a key is rotated by putting the new one first and re-encrypting
at leisure (`rapport keys rotate`).
"""

from __future__ import annotations

from collections import OrderedDict

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

NAMES_KEPT = 1024


class KeyError_(ValueError):
    """A key in the configured list is not a valid Fernet key."""


class Cipher:
    def __init__(self, keys: str | list[str]) -> None:
        items = [k.strip() for k in (keys.split(",") if isinstance(keys, str) else keys)]
        items = [k for k in items if k]
        if not items:
            raise KeyError_("no encryption key given")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in items])
        except (ValueError, TypeError) as exc:
            raise KeyError_("each key must be 32 url-safe base64-encoded bytes (Fernet)") from exc
        self._names: OrderedDict[bytes, str] = OrderedDict()

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    def encrypt(self, text: str) -> bytes:
        return self._fernet.encrypt(text.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(token)).decode("utf-8")
        except InvalidToken as exc:
            raise ValueError("stored text cannot be decrypted with the configured keys") from exc

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
        """Re-encrypt with the first key (for key rotation)."""
        return self._fernet.rotate(bytes(token))
