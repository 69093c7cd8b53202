"""API keys: create, revoke, authenticate, list.

The plaintext key exists only in api_key_create's return value; the database
keeps its SHA-256 hash and a short display prefix. Errors: api_key_create raises
ValidationError for a bad name; api_key_revoke raises PermissionDenied when the
caller neither owns the key nor is staff.
"""

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.utils import timezone

from fnplatform.accounts.models import ApiKey

KEY_PREFIX = "fnp_"
DISPLAY_PREFIX_LENGTH = 12
# last_used_at is informational; a coarse clock saves a write on every API request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_key(key: str) -> str:
    """Return the SHA-256 hex digest stored for a plaintext key."""
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_create(*, user: AbstractBaseUser, name: str = "") -> tuple[ApiKey, str]:
    """Create an API key for user; return it with the plaintext, which is never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey(
        user=user,
        name=name.strip(),
        prefix=key[:DISPLAY_PREFIX_LENGTH],
        key_hash=hash_key(key),
    )
    api_key.full_clean()
    api_key.save()
    return api_key, key


def api_key_revoke(*, user: AbstractBaseUser, api_key: ApiKey) -> ApiKey:
    """Revoke api_key if user owns it or is staff; revoking twice keeps the first time."""
    if api_key.user_id != user.pk and not user.is_staff:
        raise PermissionDenied("You can only revoke your own API keys.")
    # A conditional UPDATE stays idempotent even when two revokes race.
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key


def api_key_authenticate(key: str) -> AbstractBaseUser | None:
    """Return the active user owning the live key, or None (the auth-backend contract)."""
    if not key.startswith(KEY_PREFIX):
        return None
    # Looking up the hash, not the key, means a timing difference in the index
    # comparison reveals nothing usable about any valid key.
    api_key = (
        ApiKey.objects.select_related("user")
        .filter(key_hash=hash_key(key), revoked_at__isnull=True)
        .first()
    )
    if api_key is None or not api_key.user.is_active:
        return None
    _record_use(api_key)
    return api_key.user


def _record_use(api_key: ApiKey) -> None:
    """Stamp last_used_at unless it was stamped within LAST_USED_RESOLUTION."""
    now = timezone.now()
    cutoff = now - LAST_USED_RESOLUTION
    if api_key.last_used_at is not None and api_key.last_used_at > cutoff:
        return
    # The same condition in SQL keeps concurrent requests to one write a minute.
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lte=cutoff)
    ApiKey.objects.filter(stale, pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now


def api_key_list_for(*, user: AbstractBaseUser) -> QuerySet[ApiKey]:
    """Return user's API keys, newest first, revoked ones included."""
    return ApiKey.objects.filter(user=user).order_by("-created_at")
