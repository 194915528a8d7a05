"""Encryption at rest: ``EncryptedJSONField`` stores a JSON value as one Fernet token.

Fernet (AES-128-CBC with an HMAC-SHA256, from the ``cryptography`` package) rather than an
encrypted-field library: the keys come from ``QUANTSITE_SECRETS_KEY``
(``quantsite.secret_keys``), not derived from ``DJANGO_SECRET_KEY``, and ``MultiFernet``
gives rotation over a list of keys; the field itself is a few lines.

The column is text holding the token, so the database (and any dump of it) holds no
plaintext. The value in Python is the decrypted JSON, so every reader (the senders, the
YAML loader, the digest) works unchanged. JSON key lookups in queries are refused: the
database cannot see inside the token.
"""

from __future__ import annotations

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

TOKEN_PREFIX = "gAAAAA"  # every Fernet token starts with its version byte and timestamp


class SecretsKeyError(ImproperlyConfigured):
    """A stored secret cannot be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k) for k in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.QUANTSITE_SECRETS_KEYS))


def secret_encrypt(text: str) -> str:
    return fernet().encrypt(text.encode()).decode()


def secret_decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretsKeyError(
            "a stored secret cannot be decrypted with any key in QUANTSITE_SECRETS_KEY "
            "(key lost or replaced without rotation?)"
        ) from None


def secret_rotate(token: str) -> str:
    """The token re-encrypted with the first (newest) key."""
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretsKeyError("a stored secret cannot be decrypted for rotation") from None


class EncryptedJSONField(models.JSONField):
    """A JSON value encrypted at rest (module docstring). The admin's form field is the
    ordinary JSON one."""

    def get_internal_type(self) -> str:
        return "TextField"

    def db_type(self, connection):
        return models.TextField().db_type(connection)

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return json.loads(secret_decrypt(value))

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        if hasattr(value, "as_sql"):  # an expression: nothing to encrypt
            return value
        return secret_encrypt(json.dumps(value, cls=self.encoder))

    def get_db_prep_save(self, value, connection):
        return self.get_db_prep_value(value, connection)

    def get_transform(self, name):
        # config__url would compare against ciphertext: no key transforms
        return models.Field.get_transform(self, name)
