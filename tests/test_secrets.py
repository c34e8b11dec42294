"""The vault that keeps stored credentials (Toss billing keys) encrypted: a round trip, another
key cannot open it, the ciphertext holds nothing of the plaintext, keys rotate, and a missing or
malformed key is a clear error that never quotes the key."""

import base64

import pytest
from cryptography.fernet import Fernet

from billgraph.core.secrets import Vault, VaultError
from billgraph.settings import Settings

BILLING_KEY = "Z2V0dGluZyBhIGJpbGxpbmcga2V5IHdvdWxkIGJlIGJhZA=="


def test_a_round_trip_gives_the_plaintext_back() -> None:
    vault = Vault(Vault.generate_key())
    for plaintext in (BILLING_KEY, "", "빌링키 ✓", "x" * 10_000):
        sealed = vault.encrypt(plaintext)
        assert isinstance(sealed, str) and sealed.isascii()
        assert vault.decrypt(sealed) == plaintext
    # A fresh IV each time: equal plaintexts do not show as equal ciphertexts.
    assert vault.encrypt(BILLING_KEY) != vault.encrypt(BILLING_KEY)


def test_the_ciphertext_contains_nothing_of_the_plaintext() -> None:
    sealed = Vault(Vault.generate_key()).encrypt(BILLING_KEY)
    decoded = base64.urlsafe_b64decode(sealed)
    for fragment in (BILLING_KEY, BILLING_KEY[:12], BILLING_KEY[-12:]):
        assert fragment not in sealed
        assert fragment.encode() not in decoded


def test_another_key_or_altered_data_cannot_be_decrypted() -> None:
    sealed = Vault(Vault.generate_key()).encrypt(BILLING_KEY)
    with pytest.raises(VaultError) as wrong_key:
        Vault(Vault.generate_key()).decrypt(sealed)
    assert BILLING_KEY not in str(wrong_key.value) and sealed not in str(wrong_key.value)
    vault = Vault(Vault.generate_key())
    good = vault.encrypt(BILLING_KEY)
    tampered = good[:-6] + ("A" if good[-6] != "A" else "B") + good[-5:]
    for bad in (tampered, "not a token", "", "é"):
        with pytest.raises(VaultError):
            vault.decrypt(bad)


def test_keys_rotate_the_first_encrypts_any_decrypts() -> None:
    old, new = Vault.generate_key(), Vault.generate_key()
    sealed_with_old = Vault(old).encrypt(BILLING_KEY)
    rotated = Vault(f"{new}, {old}")
    assert rotated.decrypt(sealed_with_old) == BILLING_KEY
    assert Vault(new).decrypt(rotated.encrypt(BILLING_KEY)) == BILLING_KEY
    with pytest.raises(VaultError):
        Vault(old).decrypt(rotated.encrypt(BILLING_KEY))


@pytest.mark.parametrize("key", [None, "", " , "])
def test_a_missing_key_is_a_clear_error(key: str | None) -> None:
    with pytest.raises(VaultError) as missing:
        Vault(key)
    assert "BILLGRAPH_ENCRYPTION_KEY is not set" in missing.value.message


@pytest.mark.parametrize(
    "key",
    [
        "too-short-secret-value",
        base64.urlsafe_b64encode(b"sixteen byte key").decode(),  # 16 bytes, not 32
        "!" * 44,
        f"{Fernet.generate_key().decode()},not-a-key-at-all",
    ],
)
def test_a_malformed_key_is_a_clear_error_that_does_not_echo_it(key: str) -> None:
    with pytest.raises(VaultError) as malformed:
        Vault(key)
    assert "malformed" in malformed.value.message
    for part in key.split(","):
        assert part not in str(malformed.value) and part not in repr(malformed.value)
    assert malformed.value.__cause__ is None and malformed.value.__suppress_context__


def test_the_key_comes_from_the_setting_and_hides_in_repr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = Vault.generate_key()
    monkeypatch.setenv("BILLGRAPH_ENCRYPTION_KEY", key)
    vault = Vault(Settings().encryption_key)
    assert vault.decrypt(vault.encrypt(BILLING_KEY)) == BILLING_KEY
    assert key not in repr(vault)
