"""Ninja auth doors: `Authorization: Bearer fnp_...` (API keys) or `fnpt_...` (sign-in tokens),
and Django sessions."""

from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from ninja.security import HttpBearer
from ninja.security import SessionAuth as DjangoSessionAuth

from fnplatform.accounts.services import bearer_authenticate


class ApiKeyAuth(HttpBearer):
    """Set request.auth to the user of a live API key or sign-in token, as django_auth
    does for sessions; request.credential is the key or token (None for sessions)."""

    def authenticate(self, request: HttpRequest, token: str) -> AbstractBaseUser | None:
        """Return the credential's user, or None so the next auth method may try."""
        credential = bearer_authenticate(token)
        if credential is None:
            return None
        request.credential = credential
        request.bearer_token = token
        return credential.user


def bearer_token(request: HttpRequest) -> str:
    """The token of an `Authorization: Bearer` header, or ""."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
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
