"""fnplatform.permissions: active staff holding the admin's model permission."""

import pytest
from django.core.exceptions import PermissionDenied

from fnplatform.permissions import has_perm, require_perm, require_staff

pytestmark = pytest.mark.django_db


def test_superusers_hold_every_permission(alice):
    require_perm(alice, "functions.delete_function")
    require_perm(alice, "valves.change_functionvalves")


def test_staff_hold_only_what_they_were_granted(staff_with):
    adder = staff_with("adder", "functions.add_function")
    require_perm(adder, "functions.add_function")
    with pytest.raises(PermissionDenied, match=r"functions\.delete_function"):
        require_perm(adder, "functions.delete_function")


def test_the_change_permission_grants_the_view_one_as_in_the_admin(staff_with):
    changer = staff_with("changer", "functions.change_function")
    assert has_perm(changer, "functions.view_function")
    assert not has_perm(
        staff_with("viewer", "functions.view_function"), "functions.change_function"
    )


def test_a_granted_permission_is_not_enough_without_staff(django_user_model, staff_with):
    user = staff_with("former", "functions.add_function")
    user.is_staff = False
    user.save()
    assert not has_perm(user, "functions.add_function")
    with pytest.raises(PermissionDenied, match="Only staff"):
        require_perm(user, "functions.add_function")


def test_inactive_superusers_hold_nothing(alice):
    alice.is_active = False
    assert not has_perm(alice, "functions.view_function")
    with pytest.raises(PermissionDenied):
        require_staff(alice)


def test_anonymous_and_missing_users_are_refused():
    from django.contrib.auth.models import AnonymousUser

    for user in (None, AnonymousUser()):
        assert not has_perm(user, "functions.view_function")
        with pytest.raises(PermissionDenied):
            require_perm(user, "functions.view_function")


def test_the_refusal_names_the_action_the_things_and_the_permission(staff_with):
    with pytest.raises(PermissionDenied) as caught:
        require_perm(staff_with("stan"), "valves.change_functionvalves")
    assert str(caught.value) == (
        "Changing function valves needs the valves.change_functionvalves permission, "
        "which your account does not have."
    )
