"""Reads of accounts for the Open WebUI user endpoints.

Errors: user_list raises PermissionDenied without auth.view_user; user_get_for
raises DoesNotExist for an account the caller may not see (so ids cannot be probed).
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Q, QuerySet

from fnplatform.permissions import has_perm, require_perm

PAGE_SIZE = 30  # Open WebUI's page of users
# Open WebUI's order_by values, as Django fields.
ORDERINGS = {
    "name": "first_name",
    "email": "email",
    "username": "username",
    "created_at": "date_joined",
    "last_active_at": "last_login",
    "role": "is_staff",
}


def user_list(
    *,
    user: AbstractBaseUser,
    query: str = "",
    order_by: str = "created_at",
    direction: str = "asc",
    page: int = 1,
) -> tuple[list[AbstractBaseUser], int]:
    """Return one page of accounts (matching query in name, username or email) and the total."""
    require_perm(user, "auth.view_user")
    users: QuerySet = get_user_model().objects.prefetch_related("groups")
    if query:
        users = users.filter(
            Q(first_name__icontains=query)
            | Q(last_name__icontains=query)
            | Q(username__icontains=query)
            | Q(email__icontains=query)
        )
    field = ORDERINGS.get(order_by, "date_joined")
    users = users.order_by(f"-{field}" if direction == "desc" else field, "pk")
    start = (max(page, 1) - 1) * PAGE_SIZE
    return list(users[start : start + PAGE_SIZE]), users.count()


def user_get_for(*, user: AbstractBaseUser, id: int) -> AbstractBaseUser:
    """Return the account `id`: the caller's own, or any for staff who may view users."""
    User = get_user_model()
    if id != user.pk and not has_perm(user, "auth.view_user"):
        raise User.DoesNotExist("User not found.")
    try:
        return User.objects.get(pk=id)
    except User.DoesNotExist:
        raise User.DoesNotExist("User not found.") from None
