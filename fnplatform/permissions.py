"""Who may manage functions, valves and users: active staff holding the admin's model permission.

Services in `functions` and `valves` call these, so the API, the HTMX pages and the
admin refuse the same callers: a staff member without `functions.change_function`
gets a 403 on the admin's change page and on `POST /api/v1/functions/id/{id}/update`
alike. It depends on nothing but Django, so both apps import it without a cycle.

Errors: PermissionDenied, with a message naming the permission that is missing.
"""

from django.apps import apps
from django.core.exceptions import PermissionDenied

ACTION_WORDS = {"add": "Adding", "change": "Changing", "delete": "Deleting", "view": "Viewing"}


def is_active_staff(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


def require_staff(user, things: str = "functions") -> None:
    """Raise PermissionDenied unless the user is active staff: only staff author code."""
    if not is_active_staff(user):
        raise PermissionDenied(f"Only staff members can manage {things}.")


def has_perm(user, perm: str) -> bool:
    """Whether active staff hold `perm` ("app_label.action_model"); superusers hold all.

    As in ModelAdmin.has_view_permission, the change permission grants the view one.
    """
    if not is_active_staff(user):
        return False
    if user.has_perm(perm):
        return True
    app_label, action, model = _split(perm)
    return action == "view" and user.has_perm(f"{app_label}.change_{model}")


def require_perm(user, perm: str) -> None:
    """Raise PermissionDenied unless the user is active staff holding `perm`."""
    require_staff(user, _things(perm))
    if not has_perm(user, perm):
        raise PermissionDenied(permission_message(perm))


def permission_message(perm: str) -> str:
    """Say which permission a refusal is about, e.g. "Changing functions needs ..."."""
    _, action, _ = _split(perm)
    doing = ACTION_WORDS.get(action, action.capitalize())
    return f"{doing} {_things(perm)} needs the {perm} permission, which your account does not have."


def _things(perm: str) -> str:
    """The plural name of the model a permission is about ("functions", "users")."""
    app_label, _, model = _split(perm)
    try:
        return str(apps.get_model(app_label, model)._meta.verbose_name_plural)
    except LookupError:
        return model


def _split(perm: str) -> tuple[str, str, str]:
    app_label, _, codename = perm.partition(".")
    action, _, model = codename.partition("_")
    return app_label, action, model
