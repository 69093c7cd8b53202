"""Ninja auth door for API keys: `Authorization: Bearer fnp_...`."""

from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from ninja.security import HttpBearer

from fnplatform.accounts.services import api_key_authenticate


class ApiKeyAuth(HttpBearer):
    """Set request.auth to the key's user, as django_auth does for sessions."""

    def authenticate(self, request: HttpRequest, token: str) -> AbstractBaseUser | None:
        """Return the user for a valid key, or None so the next auth method may try."""
        return api_key_authenticate(token)
