"""Mirrors open_webui.routers.users as plugins import it: upstream's router module
imports `Users` (and the user models) from open_webui.models.users, and community
code imports them from here. They are the same scoped table."""

from ..models.users import User, UserModel, Users

__all__ = ["User", "UserModel", "Users"]
