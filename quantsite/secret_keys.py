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
import tempfile
from collections.abc import Callable
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
        keys = [key_file_read(data_dir / KEY_FILE, lambda: Fernet.generate_key().decode())]
    for n, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            # the key itself is never echoed: it is the secret
            raise ImproperlyConfigured(
                f"{ENV_NAME}: key {n} is not a Fernet key (32 url-safe base64-encoded bytes)"
            ) from None
    return keys


def key_file_read(path: Path, generate: Callable[[], str]) -> str:
    """The key stored in ``path``; when it is missing, ``generate()`` is stored there first,
    readable by its owner only (0600) from the moment it exists. Several processes may start
    at once on a new data folder (``make run``'s web server and worker): the key is written
    whole to a private temporary file and hard-linked into place, which fails if another
    process got there first, so every process ends up with the same key and none ever reads
    a missing or half-written one. A key file of an older version (0644) is tightened."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
        try:
            with os.fdopen(fd, "w") as out:
                out.write(generate())
            try:
                os.link(tmp, path)
            except FileExistsError:  # another process stored its key first: use theirs
                pass
        finally:
            os.unlink(tmp)
    elif path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return path.read_text().strip()
