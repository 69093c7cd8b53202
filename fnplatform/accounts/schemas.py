"""Open WebUI's auth and user shapes (routers/auths.py, routers/users.py, models/users.py)."""

from django.contrib.auth.base_user import AbstractBaseUser
from ninja import Schema
from pydantic import Field

from fnplatform.accounts.services import user_role

# Open WebUI's default picture; fnplatform keeps no pictures.
PROFILE_IMAGE_URL = "/user.png"


def _epoch(value) -> int:
    return int(value.timestamp()) if value else 0


def user_fields(user: AbstractBaseUser) -> dict:
    """The identity fields every Open WebUI auth response starts with."""
    return {
        "id": str(user.pk),
        "email": user.email or "",
        "name": user.get_full_name() or user.get_username(),
        "role": user_role(user),
        "profile_image_url": PROFILE_IMAGE_URL,
    }


class SigninIn(Schema):
    """Open WebUI's SigninForm; `email` may hold a username too (or send `username`)."""

    email: str = ""
    username: str = ""
    password: str


class AddUserIn(Schema):
    """Open WebUI's AddUserForm. The picture is accepted and not kept."""

    name: str
    email: str
    password: str
    profile_image_url: str | None = PROFILE_IMAGE_URL
    role: str | None = "pending"


class IdentityOut(Schema):
    id: str
    email: str
    name: str
    role: str = Field(description='"admin" (staff), "user", or "pending" (inactive)')
    profile_image_url: str


class SessionUserOut(IdentityOut):
    """GET /api/v1/auths/: the caller, and the bearer token it came with (null for a session)."""

    token: str | None = None
    token_type: str = "Bearer"
    expires_at: int | None = Field(None, description="Epoch seconds; null for API keys")


class SigninOut(SessionUserOut):
    token: str
    expires_at: int


class AddUserOut(IdentityOut):
    """Open WebUI's SigninResponse: a token of the new account (null while it is pending)."""

    token: str | None
    token_type: str = "Bearer"


class SignoutOut(Schema):
    status: bool


class ApiKeyOut(Schema):
    api_key: str = Field(
        description="The plaintext key when created; afterwards only its first characters "
        "(fnplatform keeps a hash, not the key)"
    )


class UserOut(Schema):
    """Open WebUI's UserModel, the fields a Django user has."""

    id: str
    name: str
    email: str
    username: str
    role: str
    profile_image_url: str = PROFILE_IMAGE_URL
    last_active_at: int
    updated_at: int
    created_at: int
    group_ids: list[str]

    @staticmethod
    def resolve_id(obj) -> str:
        return str(obj.pk)

    @staticmethod
    def resolve_name(obj) -> str:
        return obj.get_full_name() or obj.get_username()

    @staticmethod
    def resolve_email(obj) -> str:
        return obj.email or ""

    @staticmethod
    def resolve_username(obj) -> str:
        return obj.get_username()

    @staticmethod
    def resolve_role(obj) -> str:
        return user_role(obj)

    @staticmethod
    def resolve_last_active_at(obj) -> int:
        return _epoch(obj.last_login or obj.date_joined)

    @staticmethod
    def resolve_updated_at(obj) -> int:
        return _epoch(obj.last_login or obj.date_joined)

    @staticmethod
    def resolve_created_at(obj) -> int:
        return _epoch(obj.date_joined)

    @staticmethod
    def resolve_group_ids(obj) -> list[str]:
        return [str(group.pk) for group in obj.groups.all()]


class UserListOut(Schema):
    users: list[UserOut]
    total: int
