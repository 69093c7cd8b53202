"""Mirrors open_webui.models.users: `Users`, `User`, `UserModel`, backed by Django users.

Scoped to the calling user: a plugin running for bob sees bob's record only; a
call made for a staff member sees everyone (Open WebUI's admin role).
"""

from typing import Any

from django.contrib.auth import get_user_model
from pydantic import BaseModel, ConfigDict

from functions.services.host import caller_is_admin, is_caller, may_read_user

from .._dual import dual


class UserModel(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    email: str
    username: str | None = None
    role: str = "user"
    profile_image_url: str = "/user.png"
    bio: str | None = None
    gender: str | None = None
    date_of_birth: str | None = None
    timezone: str | None = None
    info: dict | None = None
    settings: dict | None = None
    oauth: dict | None = None
    last_active_at: int = 0
    updated_at: int = 0
    created_at: int = 0


# Upstream's `User` is the SQLAlchemy row; plugins only use it as a type.
User = UserModel


def to_user_model(user) -> UserModel:
    joined = int(user.date_joined.timestamp()) if user.date_joined else 0
    last = int(user.last_login.timestamp()) if user.last_login else joined
    return UserModel(
        id=str(user.pk),
        name=user.get_full_name() or user.get_username(),
        email=user.email or "",
        username=user.get_username(),
        role="admin" if user.is_staff else "user",
        last_active_at=last,
        updated_at=last,
        created_at=joined,
    )


def _visible():
    users = get_user_model().objects.filter(is_active=True).order_by("pk")
    if caller_is_admin():
        return users
    from functions.services.host import caller

    me = caller()
    return users.filter(pk=me["id"]) if me and str(me.get("id", "")).isdigit() else users.none()


class UsersTable:
    @dual
    def get_user_by_id(self, id: Any) -> UserModel | None:
        if not may_read_user(id) or not str(id).isdigit():
            return None
        user = _visible().filter(pk=int(id)).first()
        return to_user_model(user) if user else None

    @dual
    def get_user_by_email(self, email: str) -> UserModel | None:
        user = _visible().filter(email__iexact=email).first()
        return to_user_model(user) if user else None

    @dual
    def get_first_user(self) -> UserModel | None:
        user = _visible().first()
        return to_user_model(user) if user else None

    @dual
    def get_num_users(self) -> int:
        return _visible().count()

    @dual
    def get_users(self, skip: int | None = None, limit: int | None = None) -> list[UserModel]:
        users = _visible()[skip or 0 : (skip or 0) + limit if limit else None]
        return [to_user_model(u) for u in users]

    @dual
    def update_user_by_id(self, id: Any, updated: dict) -> UserModel | None:
        # The caller's own record only, even in an admin's call: a plugin must not be able
        # to change another account's email (and so take it over through a reset).
        if not is_caller(id):
            return None
        user = _visible().filter(pk=int(id)).first() if str(id).isdigit() else None
        if user is None:
            return None
        if "name" in updated:
            user.first_name, user.last_name = str(updated["name"])[:150], ""
        if "email" in updated:
            user.email = str(updated["email"])
        user.save(update_fields=["first_name", "last_name", "email"])
        return to_user_model(user)


Users = UsersTable()
