"""Ninja auth doors: `Authorization: Bearer fnp_...` (API keys) or `fnpt_...` (sign-in tokens),
and Django sessions."""

import asyncio
from collections.abc import Awaitable

from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from ninja.security import HttpBearer
from ninja.security import SessionAuth as DjangoSessionAuth

from fnplatform.accounts.models import ApiKey, SigninToken
from fnplatform.accounts.services import abearer_authenticate, bearer_authenticate


class ApiKeyAuth(HttpBearer):
    """Set request.auth to the user of a live API key or sign-in token, as django_auth
    does for sessions; request.credential is the key or token (None for sessions).

    On an async operation it answers on the event loop (ninja awaits what `is_async`
    callables return): from the credential cache, with no thread hop when warm. On a
    sync operation (run in a thread, no loop) it answers in place."""

    def __init__(self) -> None:
        super().__init__()
        self.is_async = True  # ninja sets it from `authenticate`, which is the sync door

    def __call__(self, request: HttpRequest) -> AbstractBaseUser | Awaitable | None:
        token = bearer_token(request)
        if not token:
            return None
        if _on_loop():
            return self.aauthenticate(request, token)
        return self.authenticate(request, token)

    def authenticate(self, request: HttpRequest, token: str) -> AbstractBaseUser | None:
        """Return the credential's user, or None so the next auth method may try."""
        return _accepted(request, token, bearer_authenticate(token))

    async def aauthenticate(self, request: HttpRequest, token: str) -> AbstractBaseUser | None:
        return _accepted(request, token, await abearer_authenticate(token))


def _on_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _accepted(
    request: HttpRequest, token: str, credential: ApiKey | SigninToken | None
) -> AbstractBaseUser | None:
    if credential is None:
        return None
    request.credential = credential
    request.bearer_token = token
    return credential.user


def bearer_token(request: HttpRequest) -> str:
    """The token of an `Authorization: Bearer` header, or ""."""
    # META, not request.headers: that builds a dict of every header, on every request.
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class SessionAuth(DjangoSessionAuth):
    """Django session auth that checks CSRF only for requests that carry a session.

    Ninja's own session auth checks CSRF first, so an API client without a cookie
    got 403 (CSRF) instead of the honest 401 (not authenticated).
    """

    def _get_key(self, request: HttpRequest) -> str | None:
        if self.param_name not in request.COOKIES:
            return None
        return super()._get_key(request)


session_auth = SessionAuth()
