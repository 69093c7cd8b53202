import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_home_renders_for_visitors(client):
    response = client.get(reverse("home"))

    assert response.status_code == 200
    assert "fnplatform" in response.text
    assert reverse("login") in response.text
    assert 'href="/admin/"' not in response.text


def test_pages_offer_admin_and_logout_to_staff(alice_client):
    response = alice_client.get(reverse("accounts:settings"))

    assert reverse("admin:index") in response.text
    assert reverse("accounts:settings") in response.text
    assert f'action="{reverse("logout")}"' in response.text


def test_home_links_api_docs(client):
    assert "/api/docs" in client.get(reverse("home")).text


def test_base_loads_htmx_and_sends_the_csrf_token_with_its_requests(bob_client):
    response = bob_client.get(reverse("accounts:settings"))

    assert "django_htmx/htmx-2.min.js" in response.text
    body_tag = response.text.split("<body", 1)[1].split(">", 1)[0]
    assert """hx-headers='{"X-CSRFToken": """ in body_tag


def test_login_page_renders(client):
    response = client.get(reverse("login"))

    assert response.status_code == 200
    assert 'name="username"' in response.text


def test_login_then_lands_on_the_chat(client, bob):
    response = client.post(reverse("login"), {"username": "bob", "password": "pw-bob"})

    assert response.status_code == 302
    assert response.url == reverse("chat:new")


def test_home_sends_a_signed_in_user_to_the_chat(bob_client):
    response = bob_client.get(reverse("home"))

    assert response.status_code == 302
    assert response.url == reverse("chat:new")


def test_admin_login_page_renders(client):
    response = client.get(reverse("admin:login"))

    assert response.status_code == 200


@pytest.mark.parametrize("name", ["home", "login", "admin:login", "api:openapi-view"])
def test_every_page_has_a_content_security_policy_without_eval_or_inline_script(client, name):
    response = client.get(reverse(name))

    policy = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    # A nonce joins 'self' on the pages that use one (Django adds it once it is read).
    assert directives["script-src"].split()[0] == "'self'"
    assert "'unsafe-eval'" not in policy and "'unsafe-inline'" not in directives["script-src"]
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"


def test_the_pages_scripts_carry_the_nonce_of_the_policy(bob_client):
    response = bob_client.get(reverse("chat:new"))

    nonce = response.headers["Content-Security-Policy"].split("'nonce-", 1)[1].split("'", 1)[0]
    scripts = response.text.split("<script")[1:]
    assert scripts, "the page loads htmx"
    for script in scripts:
        tag = script.split(">", 1)[0]
        assert f'nonce="{nonce}"' in tag or 'src="/static/' in tag
