"""Credentials billgraph must keep (Toss billing keys), encrypted at rest with Fernet
(AES-128-CBC with an HMAC-SHA256, a timestamp and a random IV per token).

The key is BILLGRAPH_ENCRYPTION_KEY (settings.encryption_key): the urlsafe base64 of 32 bytes,
as `Vault.generate_key()` makes. Several keys separated by commas rotate: the first encrypts,
any decrypts, so a new key goes first and the old one stays until what it sealed is
re-encrypted. No error message ever quotes a key or a plaintext.
"""

import binascii

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

SETTING = "BILLGRAPH_ENCRYPTION_KEY"


class VaultError(Exception):
    """The vault has no usable key, or a ciphertext it cannot open."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Vault:
    def __init__(self, key: str | None) -> None:
        keys = [part.strip() for part in (key or "").split(",") if part.strip()]
        if not keys:
            raise VaultError(f"{SETTING} is not set: stored credentials cannot be encrypted.")
        fernets: list[Fernet] = []
        for position, part in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(part.encode()))
            except (ValueError, binascii.Error):
                raise VaultError(
                    f"{SETTING} key #{position} is malformed: a key is the urlsafe base64 of "
                    "32 bytes (Vault.generate_key() makes one)."
                ) from None
        self._fernet = MultiFernet(fernets)

    def __repr__(self) -> str:
        return "Vault(<keys hidden>)"

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode("ascii")

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        """Raises VaultError if no key opens it (another key, or altered data)."""
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except (InvalidToken, UnicodeError):
            raise VaultError(
                "The ciphertext cannot be decrypted with this vault's keys (another key, or "
                "altered data)."
            ) from None
