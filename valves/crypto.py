"""Encrypt secret valve values at rest with Fernet keys from FNPLATFORM_SECRETS_KEY.

The setting is a comma-separated list, newest key first: the first key encrypts,
every key decrypts, so a key can be rotated by prepending a new one and
re-saving. Entries that are not Fernet keys are stretched into one with SHA-256,
so an operator may also configure arbitrary passphrases.
"""

import base64
import hashlib
import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError


class SecretsDecryptError(ValidationError):
    """A stored secrets token that none of the configured keys can decrypt."""

    def __init__(self) -> None:
        super().__init__(
            "Stored secret valves cannot be decrypted with the configured "
            "FNPLATFORM_SECRETS_KEY (was the key changed without keeping the old one?).",
            code="secrets_undecryptable",
        )


def fernet_for(entry: str) -> Fernet:
    """Return a Fernet for one key entry, deriving a key when the entry is not one."""
    try:
        return Fernet(entry.encode())
    except ValueError:
        return Fernet(base64.urlsafe_b64encode(hashlib.sha256(entry.encode()).digest()))


@lru_cache(maxsize=8)
def _multifernet(keys: str) -> MultiFernet:
    entries = [entry.strip() for entry in keys.split(",") if entry.strip()]
    if not entries:
        raise ImproperlyConfigured("FNPLATFORM_SECRETS_KEY is empty; secret valves need a key.")
    return MultiFernet([fernet_for(entry) for entry in entries])


def _current() -> MultiFernet:
    # Keyed by the setting's text, so tests (and key rotation) that change the
    # setting get a matching MultiFernet without restarting the process.
    return _multifernet(str(settings.FNPLATFORM_SECRETS_KEY))


def encrypt_json(data: dict) -> str:
    """Encrypt a JSON-serialisable dict with the newest key and return the token."""
    return _current().encrypt(json.dumps(data, sort_keys=True).encode()).decode()


def decrypt_json(token: str) -> dict:
    """Decrypt a token made by encrypt_json with any configured key. Raise SecretsDecryptError."""
    try:
        plain = _current().decrypt(token.encode())
    except (InvalidToken, TypeError, ValueError) as exc:
        raise SecretsDecryptError() from exc
    value = json.loads(plain)
    if not isinstance(value, dict):
        raise SecretsDecryptError()
    return value


def reencrypt(token: str) -> str:
    """Return the token re-encrypted under the newest key (for key rotation)."""
    try:
        return _current().rotate(token.encode()).decode()
    except (InvalidToken, TypeError, ValueError) as exc:
        raise SecretsDecryptError() from exc
