"""Credentials and accounts: API keys, sign-in tokens, and users made or removed by staff.

Plaintext keys and tokens exist only in the return values of api_key_create,
account_key_create and signin; the database keeps their SHA-256 hash and a short
display prefix. Looking a bearer credential up (`bearer_authenticate`, and
`abearer_authenticate` on the event loop) answers from a process cache of the hash's
row and its user (fnplatform.state: any change to keys, tokens or users is seen by
the next request); expiry is checked on every use, cached or not. Errors:
- api_key_create raises ValidationError for a bad name; api_key_revoke raises
  PermissionDenied when the caller neither owns the key nor is staff;
- account_key_for raises ApiKey.DoesNotExist when the caller has no live account key;
- signin raises ValidationError (code "invalid_credentials") for a wrong login or
  password, saying nothing about which was wrong;
- user_create raises PermissionDenied without auth.add_user (and auth.change_user to
  make staff), ValidationError for a bad or taken email, role or password;
- user_delete raises PermissionDenied without auth.delete_user, for the caller's own
  account, and for a superuser unless the caller is one; DoesNotExist for no such user.
"""

import dataclasses
import hashlib
import secrets
from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from fnplatform import state
from fnplatform.accounts.models import ApiKey, SigninToken
from fnplatform.permissions import require_perm

KEY_PREFIX = "fnp_"
TOKEN_PREFIX = "fnpt_"  # sign-in tokens; never mistaken for a key ("fnp_")
DISPLAY_PREFIX_LENGTH = 12
# last_used_at is informational; a coarse clock saves a write on every API request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
ACCOUNT_KEY_NAME = "Open WebUI API key"
INVALID_CREDENTIALS = "The email, username or password is incorrect."
# Open WebUI's roles: "admin" is staff, "pending" an account not yet allowed in.
ROLES = ("admin", "user", "pending")

Credential = ApiKey | SigninToken


def hash_key(key: str) -> str:
    """Return the SHA-256 hex digest stored for a plaintext key or token."""
    return hashlib.sha256(key.encode()).hexdigest()


# API keys


def api_key_create(*, user: AbstractBaseUser, name: str = "") -> tuple[ApiKey, str]:
    """Create an API key for user; return it with the plaintext, which is never stored."""
    return _api_key_create(user=user, name=name.strip(), is_account_key=False)


def _api_key_create(*, user, name: str, is_account_key: bool) -> tuple[ApiKey, str]:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey(
        user=user,
        name=name,
        prefix=key[:DISPLAY_PREFIX_LENGTH],
        key_hash=hash_key(key),
        is_account_key=is_account_key,
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
    credential = bearer_authenticate(key)
    return credential.user if credential is not None else None


def api_key_list_for(*, user: AbstractBaseUser) -> QuerySet[ApiKey]:
    """Return user's API keys, newest first, revoked ones included."""
    return ApiKey.objects.filter(user=user).order_by("-created_at")


def _live_api_key(key: str) -> ApiKey | None:
    if not key.startswith(KEY_PREFIX):
        return None
    # Looking up the hash, not the key, means a timing difference in the index
    # comparison reveals nothing usable about any valid key.
    api_key = (
        ApiKey.objects.select_related("user")
        .filter(key_hash=hash_key(key), revoked_at__isnull=True)
        .first()
    )
    return api_key if api_key is not None and api_key.user.is_active else None


# The account key: Open WebUI's one API key per account (/api/v1/auths/api_key).


@transaction.atomic
def account_key_create(*, user: AbstractBaseUser) -> tuple[ApiKey, str]:
    """Give user a new account key, revoking the previous one; return it with its plaintext."""
    # Locking the user's row makes two concurrent calls take turns (one live key each time).
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()
    _account_keys(user).update(revoked_at=timezone.now())
    return _api_key_create(user=user, name=ACCOUNT_KEY_NAME, is_account_key=True)


def account_key_for(*, user: AbstractBaseUser) -> ApiKey:
    """Return user's live account key, or raise ApiKey.DoesNotExist."""
    api_key = _account_keys(user).first()
    if api_key is None:
        raise ApiKey.DoesNotExist("You have no API key: POST /api/v1/auths/api_key creates one.")
    return api_key


def account_key_revoke(*, user: AbstractBaseUser) -> int:
    """Revoke user's live account key (other named keys stay); return how many were live."""
    return _account_keys(user).update(revoked_at=timezone.now())


def _account_keys(user) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user, is_account_key=True, revoked_at__isnull=True)


# Sign-in tokens


def signin(*, login: str, password: str) -> tuple[AbstractBaseUser, SigninToken, str]:
    """Check an email or username and its password; return the user and a new token."""
    user = _authenticate(login.strip(), password)
    if user is None:
        raise ValidationError(INVALID_CREDENTIALS, code="invalid_credentials")
    token, plaintext = signin_token_create(user=user)
    return user, token, plaintext


def _authenticate(login: str, password: str) -> AbstractBaseUser | None:
    """Django's authenticate (hashers, is_active, backends) for the account a login names:
    its username, else the first active account with that email. One password hash
    whatever the login, so the time taken does not tell which emails are registered."""
    if not login or not password:
        return None
    User = get_user_model()
    field = User.USERNAME_FIELD
    username = login
    if not User.objects.filter(**{field: login}).exists():
        by_email = User.objects.filter(email__iexact=login, is_active=True).order_by("pk")
        username = by_email.values_list(field, flat=True).first() or login
    return authenticate(username=username, password=password)


def signin_tokens_revoke_for(*, user: AbstractBaseUser) -> int:
    """Revoke every live sign-in token of a user (their password changed)."""
    return signin_tokens_revoke(tokens=SigninToken.objects.filter(user=user))


def signin_token_create(*, user: AbstractBaseUser) -> tuple[SigninToken, str]:
    """Create a token for user, expiring after settings.SIGNIN_TOKEN_SECONDS."""
    now = timezone.now()
    # The account's dead tokens go when it signs in again, so the table stays small.
    SigninToken.objects.filter(user=user).filter(
        Q(expires_at__lte=now) | Q(revoked_at__isnull=False)
    ).delete()
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = SigninToken.objects.create(
        user=user,
        prefix=plaintext[:DISPLAY_PREFIX_LENGTH],
        token_hash=hash_key(plaintext),
        expires_at=now + timedelta(seconds=settings.SIGNIN_TOKEN_SECONDS),
    )
    return token, plaintext


def signin_token_revoke(*, token: str) -> bool:
    """Revoke a live sign-in token given as plaintext; return whether one was live."""
    if not token.startswith(TOKEN_PREFIX):
        return False
    live = SigninToken.objects.filter(token_hash=hash_key(token), revoked_at__isnull=True)
    return bool(live.update(revoked_at=timezone.now()))


def signin_tokens_revoke(*, tokens: QuerySet[SigninToken]) -> int:
    """Revoke the live ones of some tokens (the admin's action); return how many."""
    return tokens.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


def _live_signin_token(token: str) -> SigninToken | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    found = (
        SigninToken.objects.select_related("user")
        .filter(token_hash=hash_key(token), revoked_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )
    return found if found is not None and found.user.is_active else None


def bearer_authenticate(token: str) -> Credential | None:
    """Return the live API key or sign-in token a bearer header carries (its .user is active)."""
    with state.scope():
        credential = _credential_of(_cached_credential(token))
    if credential is not None and _stale(credential):
        _record_use(credential)
    return credential


async def abearer_authenticate(token: str) -> Credential | None:
    """bearer_authenticate for the event loop: no thread hop when the credential is
    cached and its use was stamped within LAST_USED_RESOLUTION."""
    credential = _credential_of(await state.answer(_cached_credential, token))
    if credential is not None and _stale(credential):
        stamp = timezone.now()
        _claim(credential, stamp)  # before the hop: requests meanwhile see it stamped
        await sync_to_async(_stamp)(credential, stamp)
    return credential


@dataclasses.dataclass(frozen=True)
class _CachedCredential:
    """A live key or token and its active user, as rows (instances are made per use,
    so no request sees another's changes to them)."""

    model: type[Model]
    values: tuple = dataclasses.field(repr=False)  # the key's hash,
    user_values: tuple = dataclasses.field(repr=False)  # the password's hash: never in a log
    expires_at: datetime | None = None


def _cached_credential(token: str) -> _CachedCredential | None:
    # Unknown tokens are cached too: any new key or token moves the generation.
    return state.cached("credential", hash_key(token), lambda: _load_credential(token))


def _load_credential(token: str) -> _CachedCredential | None:
    credential = _live_api_key(token) or _live_signin_token(token)
    if credential is None:
        return None
    return _CachedCredential(
        type(credential),
        _row(credential),
        _row(credential.user),
        getattr(credential, "expires_at", None),
    )


def _row(instance: Model) -> tuple:
    return tuple(getattr(instance, f.attname) for f in instance._meta.concrete_fields)


def _credential_of(cached: _CachedCredential | None) -> Credential | None:
    """A fresh credential instance, with its user, unless it expired since it was cached."""
    if cached is None or (cached.expires_at is not None and cached.expires_at <= timezone.now()):
        return None
    credential = cached.model.from_db(DEFAULT_DB_ALIAS, None, cached.values)
    credential.user = get_user_model().from_db(DEFAULT_DB_ALIAS, None, cached.user_values)
    stamped = _stamped.get(_hash_of(credential))
    if stamped is not None and (credential.last_used_at or stamped) <= stamped:
        credential.last_used_at = stamped  # this process stamped it since it was cached
    return credential


# When this process last stamped each credential, by hash (its cached row keeps the
# old time, as a stamp moves no generation).
_stamped: dict[str, datetime] = {}


def _hash_of(credential: Credential) -> str:
    return credential.key_hash if isinstance(credential, ApiKey) else credential.token_hash


def _stale(credential: Credential) -> bool:
    cutoff = timezone.now() - LAST_USED_RESOLUTION
    return credential.last_used_at is None or credential.last_used_at <= cutoff


def _record_use(credential: Credential) -> None:
    """Stamp last_used_at unless it was stamped within LAST_USED_RESOLUTION."""
    now = timezone.now()
    cutoff = now - LAST_USED_RESOLUTION
    if credential.last_used_at is not None and credential.last_used_at > cutoff:
        return
    # Claimed here first, so the process's other requests meanwhile do not write too;
    # the same condition in SQL keeps concurrent processes to one write a minute.
    _claim(credential, now)
    _stamp(credential, now)


def _stamp(credential: Credential, now: datetime) -> None:
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION)
    type(credential).objects.filter(stale, pk=credential.pk).update(last_used_at=now)


def _claim(credential: Credential, now: datetime) -> None:
    credential.last_used_at = now
    if len(_stamped) > state.MAX_ENTRIES:
        _stamped.clear()
    _stamped[_hash_of(credential)] = now


# Users, as Open WebUI's admins manage them


def user_role(user: AbstractBaseUser) -> str:
    """Open WebUI's role of a Django user: "pending" (inactive), "admin" (staff) or "user"."""
    if not user.is_active:
        return "pending"
    return "admin" if user.is_staff else "user"


@transaction.atomic
def user_create(
    *, user: AbstractBaseUser, name: str, email: str, password: str, role: str = "pending"
) -> AbstractBaseUser:
    """Create an account whose username is its email; role maps to is_staff / is_active."""
    require_perm(user, "auth.add_user")
    if role not in ROLES:
        raise ValidationError(
            {"role": f"Unknown role {role!r}: choose one of {', '.join(ROLES)}."},
            code="invalid_role",
        )
    if role == "admin":
        # The admin's add form cannot make staff either: that is a change of the user.
        require_perm(user, "auth.change_user")
    User = get_user_model()
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ValidationError({"email": exc.messages}, code="invalid_email") from None
    if User.objects.filter(Q(email__iexact=email) | Q(**{User.USERNAME_FIELD: email})).exists():
        raise ValidationError({"email": "This email is already registered."}, code="email_taken")
    created = User(
        **{User.USERNAME_FIELD: email},
        email=email,
        first_name=name.strip(),
        is_staff=role == "admin",
        is_active=role != "pending",
    )
    try:
        validate_password(password, created)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}, code="invalid_password") from None
    created.set_password(password)
    try:
        created.full_clean()
    except ValidationError as exc:
        # Open WebUI's field names: the username is the email, the first name the name.
        renamed = {"username": "email", "first_name": "name"}
        raise ValidationError(
            {renamed.get(field, field): msgs for field, msgs in exc.message_dict.items()}
        ) from None
    created.save()
    return created


def user_add(
    *, user: AbstractBaseUser, name: str, email: str, password: str, role: str = "pending"
) -> tuple[AbstractBaseUser, str | None]:
    """Open WebUI's "add user": the new account and a sign-in token for it (None when the
    account is pending, as no token of an inactive account authenticates)."""
    created = user_create(user=user, name=name, email=email, password=password, role=role)
    return created, signin_token_create(user=created)[1] if created.is_active else None


def user_delete(*, user: AbstractBaseUser, id: int) -> None:
    """Delete account `id`, with everything it owns (keys, tokens, user valves)."""
    require_perm(user, "auth.delete_user")
    User = get_user_model()
    target = User.objects.filter(pk=id).first()
    if target is None:
        raise User.DoesNotExist("User not found.")
    if target.pk == user.pk:
        raise PermissionDenied("You cannot delete your own account.")
    if target.is_superuser and not user.is_superuser:
        raise PermissionDenied("Only a superuser can delete a superuser.")
    target.delete()
