"""fnplatform.middleware: bodies holding a lone surrogate are refused before any view."""

import json

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from fnplatform.middleware import RefuseLoneSurrogatesMiddleware, surrogate_paths

PIPE = '"""\ntitle: P\n"""\nclass Pipe:\n    def pipe(self, body):\n        return "\\\\ud800"\n'


def test_paths_name_every_string_and_key_holding_a_surrogate():
    data = {"a": ["ok", {"b": "x\ud800"}], "\udfff": 1, "c": "\U0001f600", "d": 5}
    assert list(surrogate_paths(data)) == ["a.1.b", "\\udfff"]
    assert list(surrogate_paths("\ud800")) == ["body"]


def test_a_surrogate_pair_is_one_character_and_passes():
    assert list(surrogate_paths(json.loads('{"smile": "\\ud83d\\ude00"}'))) == []


def run(body: bytes, content_type: str = "application/json", method: str = "post"):
    """Send a request through the middleware alone; the view answers 200 'passed'."""
    request = RequestFactory().generic(method.upper(), "/api/x", body, content_type=content_type)
    return RefuseLoneSurrogatesMiddleware(lambda r: HttpResponse("passed"))(request)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"messages": [{"role": "user", "content": "\\ud800"}]}', "messages.0.content"),
        (b'{"k": "\\uDBFF"}', "k"),
        (b'["\\udc00"]', "0"),
        (b'"\\ud800"', "body"),
    ],
)
def test_json_bodies_with_a_surrogate_are_a_400_naming_the_field(body, field):
    response = run(body)
    assert response.status_code == 400
    assert list(json.loads(response.content)["errors"]) == [field]
    assert field in json.loads(response.content)["detail"]


def test_json_labelled_as_something_else_is_checked_too():
    assert run(b'{"k": "\\ud800"}', content_type="text/plain").status_code == 400


def test_utf16_json_is_checked_too():
    body = '{"k": "\\ud800"}'.encode("utf-16")
    assert json.loads(body) == {"k": "\ud800"}  # what a JSON parser downstream would see
    assert run(body).status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        b'{"smile": "\\ud83d\\ude00"}',
        b'{"escaped": "\\\\ud800"}',  # a backslash, then the text "ud800"
        json.dumps({"content": PIPE}).encode(),
        b"not json \\ud800",
        b"",
    ],
)
def test_everything_else_passes(body):
    assert run(body).content == b"passed"


def test_reads_are_not_checked():
    assert run(b'{"k": "\\ud800"}', method="get").content == b"passed"


async def test_the_async_chain_refuses_and_passes_alike():
    async def view(request):
        return HttpResponse("passed")

    middleware = RefuseLoneSurrogatesMiddleware(view)
    factory = RequestFactory()
    bad = factory.post("/x", b'{"k": "\\ud800"}', content_type="application/json")
    good = factory.post("/x", b'{"k": "fine"}', content_type="application/json")
    assert (await middleware(bad)).status_code == 400
    assert (await middleware(good)).content == b"passed"


def test_a_surrogate_sent_as_its_utf8_bytes_is_refused_too():
    # Not valid UTF-8, yet json.loads reads it (it decodes bytes with "surrogatepass").
    body = b'{"content": "\xed\xa0\x80"}'
    assert json.loads(body) == {"content": "\ud800"}
    assert run(body).status_code == 400


@pytest.mark.django_db
def test_the_api_answers_a_surrogate_in_utf8_bytes_with_a_400_not_a_500(alice_client):
    response = alice_client.post(
        "/api/v1/functions/create", b'{"id": "x", "content": "\xed\xa0\x80"}', "application/json"
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["content"]


def test_json_nested_past_reason_is_left_to_the_view_not_a_crash_here():
    body = b'{"a": ' * 100_000 + b'"\\ud800"' + b"}" * 100_000
    assert run(body).content == b"passed"


def test_every_middleware_is_async_capable_so_async_views_need_no_thread_hop():
    from django.conf import settings
    from django.utils.module_loading import import_string

    sync_only = [
        path
        for path in settings.MIDDLEWARE
        if not getattr(import_string(path), "async_capable", True)
    ]
    assert sync_only == []


async def test_static_files_are_served_under_asgi_and_other_paths_go_on(async_client):
    response = await async_client.get("/static/css/app.css")
    assert response.status_code == 200
    assert b"".join(response.streaming_content)  # a file: its iterator is a sync one
    assert (await async_client.get("/static/css/nope.css")).status_code == 404
    assert (await async_client.get("/health")).status_code == 200


def test_static_files_are_served_under_wsgi_too(client):
    response = client.get("/static/css/app.css")
    assert response.status_code == 200
    assert b"".join(response.streaming_content)


# Django's middleware on the event loop (fnplatform.middleware's subclasses)


def middleware_hops(hops: list[str]) -> list[str]:
    return [name for name in hops if "Middleware." in name]


@pytest.mark.django_db
async def test_an_async_request_makes_no_thread_hop_for_the_middleware(async_client):
    from tests.support.counting import cost

    with cost(queries=False) as seen:
        response = await async_client.get("/static/css/nope.css")

    assert response.status_code == 404
    assert middleware_hops(seen.hops) == []


@pytest.mark.django_db(transaction=True)
async def test_sign_in_csrf_and_messages_still_work_on_the_loop(django_user_model):
    from asgiref.sync import sync_to_async
    from django.test import AsyncClient

    from tests.support.counting import cost

    await sync_to_async(django_user_model.objects.create_user)("carol", "", "pw-carol")
    client = AsyncClient(enforce_csrf_checks=True)
    page = await client.get("/login/")
    token = page.cookies["csrftoken"].value

    refused = await client.post("/login/", {"username": "carol", "password": "pw-carol"})
    assert refused.status_code == 403  # no token: the check ran (in its thread)

    with cost(queries=False) as seen:
        signed_in = await client.post(
            "/login/",
            {"username": "carol", "password": "pw-carol", "csrfmiddlewaretoken": token},
        )
    assert signed_in.status_code == 302
    # The modified session was saved, in a thread: the next request is carol's.
    assert "SessionMiddleware.process_response" in middleware_hops(seen.hops)
    settings_page = await client.get("/accounts/settings/")
    assert settings_page.status_code == 200
    assert b"carol" in settings_page.content


@pytest.mark.django_db
async def test_messages_a_view_adds_are_stored_through_a_thread():
    from django.contrib import messages
    from django.contrib.messages.storage.cookie import CookieStorage
    from django.contrib.sessions.backends.db import SessionStore

    from fnplatform.middleware import MessageMiddleware
    from tests.support.counting import cost

    async def view(request):
        messages.info(request, "hello there")
        return HttpResponse("ok")

    request = RequestFactory().get("/")
    request.session = SessionStore()
    with cost(queries=False) as seen:
        response = await MessageMiddleware(view)(request)

    assert middleware_hops(seen.hops) == ["MessageMiddleware.process_response"]
    stored = CookieStorage(RequestFactory().get("/"))
    stored.request.COOKIES["messages"] = response.cookies["messages"].value
    assert [m.message for m in stored] == ["hello there"]
