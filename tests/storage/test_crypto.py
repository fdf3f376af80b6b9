"""Therapist names are decrypted once per process, and the memory of them stays bounded."""

from __future__ import annotations

import pytest

from storage import crypto
from storage.crypto import Cipher


def test_a_name_is_decrypted_once_and_the_same_as_plain_decryption(
    cipher: Cipher, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = cipher.encrypt("Dana Lee")
    calls: list[bytes] = []
    plain = cipher.decrypt

    def counted(t: bytes) -> str:
        calls.append(t)
        return plain(t)

    monkeypatch.setattr(cipher, "decrypt", counted)
    assert [cipher.decrypt_name(token) for _ in range(3)] == ["Dana Lee"] * 3
    assert len(calls) == 1
    renamed = cipher.encrypt("Dana Lee-Park")  # a new name is a new token
    assert cipher.decrypt_name(renamed) == "Dana Lee-Park"
    assert len(calls) == 2


def test_names_kept_are_bounded(cipher: Cipher, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crypto, "NAMES_KEPT", 3)
    tokens = [cipher.encrypt(f"Therapist {n}") for n in range(5)]
    assert [cipher.decrypt_name(t) for t in tokens] == [f"Therapist {n}" for n in range(5)]
    assert len(cipher._names) == 3


def test_a_name_under_a_foreign_key_is_refused(cipher: Cipher) -> None:
    foreign = Cipher(Cipher.generate_key()).encrypt("Dana Lee")
    with pytest.raises(ValueError, match="cannot be decrypted"):
        cipher.decrypt_name(foreign)
