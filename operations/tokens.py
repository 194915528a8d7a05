"""API tokens: a user creates, lists and revokes their own (README "API").

A token is a knox ``AuthToken``: the plaintext (``qs_`` + 64 hex characters) is shown once,
at creation; the database keeps its SHA-512 digest and its first 15 characters
(``token_key``, what a list shows and a revocation names), never the whole token. What a
token may do is what its user may do: a plain user's token reads, a staff user's token
also runs the commands. Revoking deletes the row, so the next request with it is a 401.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.utils import timezone
from knox.models import AuthToken
from knox.settings import knox_settings

MAX_TTL_DAYS = 3650


@dataclass(frozen=True)
class IssuedToken:
    token: str  # the plaintext, returned once
    token_key: str
    created: datetime
    expiry: datetime | None


def api_token_create(*, user: AbstractBaseUser, ttl_days: int | None = None) -> IssuedToken:
    """A new token for ``user``, valid ``ttl_days`` days (default: the
    ``QUANTSITE_API_TOKEN_TTL_DAYS`` setting, where 0 means until revoked)."""
    if ttl_days is not None and not 1 <= ttl_days <= MAX_TTL_DAYS:
        raise ValueError(f"ttl_days must be between 1 and {MAX_TTL_DAYS}")
    expiry = knox_settings.TOKEN_TTL if ttl_days is None else timedelta(days=ttl_days)
    row, token = AuthToken.objects.create(user=user, expiry=expiry)
    return IssuedToken(token=token, token_key=row.token_key, created=row.created, expiry=row.expiry)


def api_token_list(*, user: AbstractBaseUser) -> QuerySet[AuthToken]:
    """The user's tokens that still work, newest first."""
    return (
        AuthToken.objects.filter(user=user)
        .filter(Q(expiry__isnull=True) | Q(expiry__gt=timezone.now()))
        .order_by("-created", "token_key")
    )


def api_token_revoke(*, user: AbstractBaseUser, token_key: str | None = None) -> int:
    """Revoke the user's token ``token_key`` (every one when None); the number revoked."""
    rows = AuthToken.objects.filter(user=user)
    if token_key is not None:
        rows = rows.filter(token_key=token_key)
    deleted, _ = rows.delete()
    return deleted
