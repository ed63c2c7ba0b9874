"""Encryption of stored GitLab tokens (and other secrets) with Fernet.

`MIRRORBOT_SECRET_KEY` is a comma-separated list: the first key encrypts, every key
decrypts, so a new key can be put in front and old rows re-encrypted at leisure.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretKeyError(Exception):
    """A stored secret cannot be decrypted with any configured key."""


class TokenCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one Fernet key is needed (MIRRORBOT_SECRET_KEY)")
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(
                "a stored token cannot be decrypted: was MIRRORBOT_SECRET_KEY changed without "
                "keeping the old key in the list?"
            ) from None

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt with the first (newest) key."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(
                "a stored token cannot be decrypted with any configured key"
            ) from None


def generate_key() -> str:
    return Fernet.generate_key().decode()
