import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_home_renders_for_visitors(client):
    response = client.get(reverse("home"))

    assert response.status_code == 200
    assert "fnplatform" in response.text
    assert reverse("login") in response.text
    assert 'href="/admin/"' not in response.text


def test_home_offers_admin_and_logout_to_staff(alice_client):
    response = alice_client.get(reverse("home"))

    assert reverse("admin:index") in response.text
    assert reverse("accounts:settings") in response.text
    assert f'action="{reverse("logout")}"' in response.text


def test_home_links_api_docs(client):
    assert "/api/docs" in client.get(reverse("home")).text


def test_base_loads_htmx_and_sends_the_csrf_token_with_its_requests(bob_client):
    response = bob_client.get(reverse("home"))

    assert "django_htmx/htmx-2.min.js" in response.text
    body_tag = response.text.split("<body", 1)[1].split(">", 1)[0]
    assert """hx-headers='{"X-CSRFToken": """ in body_tag


def test_login_page_renders(client):
    response = client.get(reverse("login"))

    assert response.status_code == 200
    assert 'name="username"' in response.text


def test_login_then_lands_on_settings(client, bob):
    response = client.post(reverse("login"), {"username": "bob", "password": "pw-bob"})

    assert response.status_code == 302
    assert response.url == reverse("accounts:settings")


def test_admin_login_page_renders(client):
    response = client.get(reverse("admin:login"))

    assert response.status_code == 200
