from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from fnplatform.accounts.models import ApiKey
from fnplatform.accounts.services import api_key_authenticate

pytestmark = pytest.mark.django_db


def run(*args, **options) -> str:
    out = StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


def test_create_api_key_prints_only_a_working_key(bob):
    out = run("create_api_key", "bob", "--name", "ci")

    key = out.strip()
    assert out == key + "\n"
    assert api_key_authenticate(key) == bob
    assert ApiKey.objects.get(user=bob).name == "ci"


def test_create_api_key_rejects_an_unknown_user():
    with pytest.raises(CommandError, match="nobody"):
        run("create_api_key", "nobody")


def test_ensure_demo_admin_creates_a_superuser_with_a_generated_password(monkeypatch):
    monkeypatch.delenv("FNPLATFORM_ADMIN_PASSWORD", raising=False)

    out = run("ensure_demo_admin")

    assert "Demo admin created: username admin, password " in out
    password = out.strip().rsplit(" ", 1)[-1]
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password(password)


def test_ensure_demo_admin_uses_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("FNPLATFORM_ADMIN_PASSWORD", "s3cret-demo")

    out = run("ensure_demo_admin")

    assert "password s3cret-demo" in out
    assert get_user_model().objects.get(username="admin").check_password("s3cret-demo")


def test_ensure_demo_admin_twice_creates_one_admin():
    run("ensure_demo_admin")

    out = run("ensure_demo_admin")

    assert out.strip() == "Staff user exists; not creating the demo admin."
    assert get_user_model().objects.filter(is_staff=True).count() == 1


def test_ensure_demo_admin_does_nothing_when_staff_exists(alice):
    out = run("ensure_demo_admin")

    assert "not creating" in out
    assert not get_user_model().objects.filter(username="admin").exists()


def test_ensure_demo_admin_refuses_to_promote_an_existing_ordinary_admin_user(django_user_model):
    django_user_model.objects.create_user("admin", password="pw")

    with pytest.raises(CommandError, match="non-staff user"):
        run("ensure_demo_admin")

    assert not django_user_model.objects.filter(is_staff=True).exists()
