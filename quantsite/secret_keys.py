"""The keys that encrypt stored secrets (alert channel credentials) at rest.

``QUANTSITE_SECRETS_KEY``: one or more Fernet keys (``python -c "from cryptography.fernet
import Fernet; print(Fernet.generate_key().decode())"``), comma-separated, newest first.
The first key encrypts; every key decrypts (``MultiFernet``), so a rotation is: put the new
key first, run ``manage.py secrets_rotate`` (re-encrypts every stored secret with it), then
drop the old key.

Kept apart from ``DJANGO_SECRET_KEY`` on purpose: rotating the session-signing key must not
make the stored credentials unreadable, and a leaked database dump plus the signing key
should still not be enough.

Without the variable: in development a key is generated once into the data folder
(``secrets_key``, mode 0600, like the ``secret_key`` file) so ``make run`` works; in
production (``DJANGO_ENV=production``) startup fails, since a generated key beside the
database protects nothing and a lost one loses every credential.

No Django model import here: ``settings`` calls it.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

ENV_NAME = "QUANTSITE_SECRETS_KEY"
KEY_FILE = "secrets_key"


def secrets_keys_load(raw: str, *, data_dir: Path, production: bool) -> list[str]:
    """The Fernet keys, newest first, from the variable's value or the development file."""
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        if production:
            raise ImproperlyConfigured(
                f"{ENV_NAME} must be set in production (one or more Fernet keys, newest first)"
            )
        keys = [_key_file_read(data_dir / KEY_FILE)]
    for n, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            # the key itself is never echoed: it is the secret
            raise ImproperlyConfigured(
                f"{ENV_NAME}: key {n} is not a Fernet key (32 url-safe base64-encoded bytes)"
            ) from None
    return keys


def _key_file_read(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        try:
            # readable by its owner only (0600), from the moment it exists
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(Fernet.generate_key().decode())
    elif path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return path.read_text().strip()
