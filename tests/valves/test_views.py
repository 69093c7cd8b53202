"""The end user's own plugin settings pages under /valves/."""

import pytest
from django.urls import reverse

from fnplatform.middleware import MESSAGE
from functions.services.functions import function_set_active
from tests.support.valves import valves_get_user
from valves.services import SECRET_MASK, valves_state_user, valves_update_user

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def edit_url(function) -> str:
    return reverse("valves:edit", args=[function.id])


def test_list_shows_usable_functions_with_user_valves(bob_client, alice, valves_pipe, bare_pipe):
    response = bob_client.get(reverse("valves:list"))
    assert response.status_code == 200
    assert edit_url(valves_pipe) in response.text
    assert edit_url(bare_pipe) not in response.text
    function_set_active(user=alice, function=valves_pipe, active=False)
    assert edit_url(valves_pipe) not in bob_client.get(reverse("valves:list")).text


def test_pages_need_a_login(client, valves_pipe):
    for url in (reverse("valves:list"), edit_url(valves_pipe)):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_form_page_renders_fields_with_csrf_and_page_chrome(bob_client, valves_pipe):
    response = bob_client.get(edit_url(valves_pipe))
    assert response.status_code == 200
    html = response.text
    assert 'id="valves-form"' in html and "csrfmiddlewaretoken" in html
    assert 'name="GREETING"' in html and 'type="password"' in html  # PERSONAL_TOKEN
    assert '<option value="x-bob">Mine</option>' in html  # options resolved for bob
    assert "site-header" in html


def test_htmx_get_returns_only_the_form_partial(bob_client, valves_pipe):
    response = bob_client.get(edit_url(valves_pipe), **HTMX)
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section id="valves-form"')
    assert "site-header" not in response.text and "<html" not in response.text


def test_post_saves_and_redirects(bob_client, bob, valves_pipe):
    response = bob_client.post(
        edit_url(valves_pipe), {"GREETING": "Yo", "SHOUT": "True", "PERSONAL_TOKEN": "t-1"}
    )
    assert response.status_code == 302 and response["Location"] == edit_url(valves_pipe)
    valves = valves_get_user(user=bob, function=valves_pipe)
    assert (valves.GREETING, valves.SHOUT, valves.PERSONAL_TOKEN) == ("Yo", True, "t-1")
    page = bob_client.get(edit_url(valves_pipe)).text
    assert "t-1" not in page and "Set — leave empty to keep." in page
    assert 'name="PERSONAL_TOKEN__clear"' in page


def test_htmx_post_returns_the_saved_partial_and_triggers_an_event(bob_client, bob, valves_pipe):
    response = bob_client.post(edit_url(valves_pipe), {"GREETING": "Hey"}, **HTMX)
    assert response.status_code == 200
    assert "valves-saved" in response["HX-Trigger"]
    assert 'id="valves-form"' in response.text and "Saved." in response.text
    assert "site-header" not in response.text
    assert valves_state_user(user=bob, function=valves_pipe).values == {"GREETING": "Hey"}


def test_empty_secret_keeps_it_and_the_clear_box_removes_it(bob_client, bob, valves_pipe):
    valves_update_user(user=bob, function=valves_pipe, values={"PERSONAL_TOKEN": "t-1"})
    bob_client.post(edit_url(valves_pipe), {"PERSONAL_TOKEN": "", "GREETING": "a"})
    assert valves_get_user(user=bob, function=valves_pipe).PERSONAL_TOKEN == "t-1"
    bob_client.post(edit_url(valves_pipe), {"PERSONAL_TOKEN": "", "PERSONAL_TOKEN__clear": "on"})
    assert valves_state_user(user=bob, function=valves_pipe).secrets_set == {
        "PERSONAL_TOKEN": False
    }


def test_invalid_post_shows_the_error_on_the_field_and_saves_nothing(bob_client, bob, valves_pipe):
    response = bob_client.post(edit_url(valves_pipe), {"LANGUAGE": "klingon"}, **HTMX)
    assert response.status_code == 200
    assert "errorlist" in response.text and "klingon" in response.text
    assert not valves_state_user(user=bob, function=valves_pipe).stored


def test_each_user_sees_only_their_own_values(bob_client, outsider, client, valves_pipe):
    valves_update_user(user=outsider, function=valves_pipe, values={"GREETING": "eve-only"})
    bob_client.post(edit_url(valves_pipe), {"GREETING": "bob-only"})
    assert "bob-only" in bob_client.get(edit_url(valves_pipe)).text
    assert "eve-only" not in bob_client.get(edit_url(valves_pipe)).text
    client.force_login(outsider)
    page = client.get(edit_url(valves_pipe)).text
    assert "eve-only" in page and "bob-only" not in page


def test_unusable_or_missing_functions_are_404(bob_client, alice, valves_pipe):
    assert bob_client.get(reverse("valves:edit", args=["missing"])).status_code == 404
    function_set_active(user=alice, function=valves_pipe, active=False)
    assert bob_client.get(edit_url(valves_pipe)).status_code == 404
    assert bob_client.post(edit_url(valves_pipe), {"GREETING": "x"}).status_code == 404


def test_a_function_without_user_valves_says_so(bob_client, bare_pipe):
    response = bob_client.get(edit_url(bare_pipe))
    assert response.status_code == 200
    assert "has no per-user settings" in response.text and "<form method" not in response.text


def test_stored_values_that_no_longer_fit_are_shown_not_fatal(bob_client, bob, valves_pipe):
    from valves.models import UserValves

    UserValves.objects.create(user=bob, function=valves_pipe, data={"SHOUT": "loudly"})
    response = bob_client.get(edit_url(valves_pipe))
    assert response.status_code == 200
    assert "no longer fit" in response.text and "SHOUT" in response.text


COUNTING_PIPE = """
from pydantic import BaseModel, Field

class Pipe:
    class UserValves(BaseModel):
        COUNT: int = Field(default=1, ge=1)

    def pipe(self, body):
        return "ok"
"""


def test_service_errors_land_on_the_form_field(bob_client, bob, make_function):
    function = make_function("counting", content=COUNTING_PIPE, is_active=True)
    response = bob_client.post(edit_url(function), {"COUNT": "0"}, **HTMX)
    assert response.status_code == 200 and "Saved." not in response.text
    assert response.context["form"].errors["COUNT"] == [
        "Input should be greater than or equal to 1"
    ]
    assert not valves_state_user(user=bob, function=function).stored


def test_submitting_the_form_as_shown_resets_a_bad_stored_value(bob_client, bob, valves_pipe):
    from valves.models import UserValves

    UserValves.objects.create(user=bob, function=valves_pipe, data={"SHOUT": "loudly"})
    response = bob_client.post(edit_url(valves_pipe), {"GREETING": "x", "SHOUT": ""}, **HTMX)
    assert "Saved." in response.text
    assert valves_state_user(user=bob, function=valves_pipe).values == {"GREETING": "x"}


def test_masked_value_is_never_the_input_value(bob_client, bob, valves_pipe):
    valves_update_user(user=bob, function=valves_pipe, values={"PERSONAL_TOKEN": "t-1"})
    assert f'value="{SECRET_MASK}"' not in bob_client.get(edit_url(valves_pipe)).text


def test_a_form_post_holding_a_lone_surrogate_is_a_400_and_nothing_is_stored(
    bob_client, bob, valves_pipe
):
    from valves.models import UserValves

    # Django reads url-encoded forms only as UTF-8; a multipart form may name UTF-7,
    # whose decoder yields lone surrogates ("+2AA-" is U+D800).
    body = (
        b'--b\r\nContent-Disposition: form-data; name="GREETING"\r\n\r\n+2AA-\r\n'
        b'--b\r\nContent-Disposition: form-data; name="LANGUAGE"\r\n\r\nen\r\n--b--\r\n'
    )
    # generic(), as post() would re-encode the bytes in the named charset.
    response = bob_client.generic(
        "POST",
        edit_url(valves_pipe),
        body,
        content_type="multipart/form-data; boundary=b; charset=utf-7",
    )

    assert response.status_code == 400
    assert response.text == f"GREETING: {MESSAGE}"
    assert not UserValves.objects.filter(user=bob).exists()
