"""Encryption at rest: the token format (AES-256-GCM), rotation, tampering; therapist names
decrypted once per process, in bounded memory."""

from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from storage import crypto
from storage.crypto import Cipher

KEY = Cipher.generate_key()


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


# --- the token format -------------------------------------------------------------------------


@given(st.text(max_size=3000))
def test_any_text_comes_back_as_it_went_in(text: str) -> None:
    cipher = Cipher(KEY)
    token = cipher.encrypt(text)
    assert token[:1] == crypto.VERSION
    assert cipher.decrypt(token) == text
    if len(text) >= 8:
        assert text.encode() not in token


def test_the_same_text_seals_differently_each_time() -> None:
    cipher = Cipher(KEY)
    assert cipher.encrypt("Alice Smith") != cipher.encrypt("Alice Smith")


def test_a_token_in_any_other_form_is_refused_as_undecryptable() -> None:
    """Only the AES-GCM form was ever stored; a Fernet token under the same key is not opened."""
    other = Fernet(KEY.encode()).encrypt(b"never written by Rapport")
    cipher = Cipher(KEY)
    with pytest.raises(ValueError, match="cannot be decrypted") as refused:
        cipher.decrypt(other)
    assert crypto.undecryptable(refused.value)
    assert cipher.opener(other) is None and Cipher.sealed_by(other) is None


def test_a_generated_key_is_32_random_url_safe_base64_bytes() -> None:
    key = Cipher.generate_key()
    assert len(base64.urlsafe_b64decode(key)) == 32 and key != Cipher.generate_key()


def test_rotation_moves_a_token_to_the_first_key() -> None:
    new_key = Cipher.generate_key()
    under_old = Cipher(KEY).encrypt("a comment")
    both = Cipher(f"{new_key},{KEY}")
    assert both.decrypt(under_old) == "a comment"
    rotated = both.rotate(under_old)
    assert Cipher(new_key).decrypt(rotated) == "a comment"
    with pytest.raises(ValueError, match="cannot be decrypted"):
        Cipher(KEY).decrypt(rotated)


@pytest.mark.parametrize("where", [0, 1, 5, 17, -1])
def test_a_changed_byte_anywhere_is_refused(where: int) -> None:
    cipher = Cipher(KEY)
    token = bytearray(cipher.encrypt("I feel better this week"))
    token[where] ^= 0x01
    with pytest.raises(ValueError, match="cannot be decrypted"):
        cipher.decrypt(bytes(token))


@pytest.mark.parametrize("token", [b"", b"\x01", b"\x01abcd", b"\x01" + bytes(40), b"gAAAAA"])
def test_truncated_or_empty_tokens_are_refused(token: bytes) -> None:
    with pytest.raises(ValueError, match="cannot be decrypted"):
        Cipher(KEY).decrypt(token)


BASE64_31_BYTES = base64.urlsafe_b64encode(bytes(31)).decode()


@pytest.mark.parametrize(
    "keys", ["", " , ", "short", "x" * 44, f"{KEY},not-a-key", BASE64_31_BYTES, KEY[:-1] + "!"]
)
def test_bad_keys_are_refused_at_start(keys: str) -> None:
    with pytest.raises(crypto.KeyError_):
        Cipher(keys)
