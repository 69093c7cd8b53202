"""Ninja auth door for API keys: `Authorization: Bearer fnp_...`."""

from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from ninja.security import HttpBearer
from ninja.security import SessionAuth as DjangoSessionAuth

from fnplatform.accounts.services import api_key_authenticate


class ApiKeyAuth(HttpBearer):
    """Set request.auth to the key's user, as django_auth does for sessions."""

    def authenticate(self, request: HttpRequest, token: str) -> AbstractBaseUser | None:
        """Return the user for a valid key, or None so the next auth method may try."""
        return api_key_authenticate(token)


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
