"""Import from a URL refuses loopback and private addresses unless allowed.

Refusals happen before any connection: nothing here sends traffic anywhere but to
loopback servers of the test itself.
"""

import http.server
import socket
import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from functions.services import transfer

pytestmark = pytest.mark.django_db

PIPE = "class Pipe:\n    def pipe(self, body):\n        return 'fetched'\n"


@pytest.fixture
def no_connections(monkeypatch):
    """Fail the test if anything tries to connect (a refused URL must not be fetched)."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a connection was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://127.0.0.1/plugin.py", id="loopback"),
        pytest.param("http://localhost:8000/plugin.py", id="localhost"),
        pytest.param("http://10.1.2.3/plugin.py", id="private-10"),
        pytest.param("http://192.168.0.1/plugin.py", id="private-192"),
        pytest.param("http://[::1]/plugin.py", id="ipv6-loopback"),
        pytest.param("http://169.254.169.254/latest/meta-data", id="link-local-metadata"),
        pytest.param("http://0.0.0.0/plugin.py", id="unspecified"),
        pytest.param("http://224.0.0.1/plugin.py", id="multicast"),
        pytest.param("http://[::ffff:127.0.0.1]/plugin.py", id="ipv4-mapped"),
        pytest.param("https://240.0.0.1/plugin.py", id="reserved"),
    ],
)
def test_private_addresses_are_refused_before_any_connection(alice, url, no_connections):
    with pytest.raises(ValidationError) as info:
        transfer.fetch_source(user=alice, url=url)
    message = info.value.message_dict["url"][0]
    assert "importing from it is refused" in message
    assert "FNPLATFORM_IMPORT_ALLOW_PRIVATE=1" in message


def test_a_name_with_any_private_address_is_refused(alice, monkeypatch, no_connections):
    monkeypatch.setattr(transfer, "_resolve", lambda host, port: ["93.184.216.34", "10.0.0.7"])
    with pytest.raises(ValidationError, match=r"resolves to 10\.0\.0\.7"):
        transfer.fetch_source(user=alice, url="http://mixed.example/plugin.py")


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("100.64.0.1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", False),  # 6to4 of 169.254.169.254
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo, client 192.0.2.45
        ("fec0::1", False),  # deprecated site-local
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
    ],
)
def test_is_public(address, public):
    assert transfer.is_public(address) is public


@pytest.fixture
def server():
    """A loopback server: /plugin.py, and /hop redirecting to the path in its query."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Host", ""))
            if self.path.startswith("/hop?to="):
                self.send_response(302)
                self.send_header("Location", self.path.split("=", 1)[1])
                self.end_headers()
                return
            body = PIPE.encode() if self.path == "/plugin.py" else None
            self.send_response(200 if body else 404)
            self.end_headers()
            if body:
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    httpd.seen = seen
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_the_setting_allows_loopback_and_redirects_are_followed(alice, settings, server, no_proxy):
    settings.FUNCTIONS_IMPORT_ALLOW_PRIVATE = True
    port = server.server_address[1]
    fetched = transfer.fetch_source(user=alice, url=f"http://127.0.0.1:{port}/hop?to=/plugin.py")
    assert fetched.content == PIPE


def test_every_redirect_hop_is_checked(alice, monkeypatch, server, no_proxy):
    # 127.0.0.1 stands in for a public host; the redirect goes to a "private" one.
    monkeypatch.setattr(transfer, "is_public", lambda address: address == "127.0.0.1")
    port = server.server_address[1]
    target = f"http://127.0.0.2:{port}/plugin.py"
    with pytest.raises(ValidationError, match=r"127\.0\.0\.2, a loopback, private"):
        transfer.fetch_source(user=alice, url=f"http://127.0.0.1:{port}/hop?to={target}")
    assert len(server.seen) == 1  # the first hop only: the private one was never asked


def test_the_checked_address_is_the_one_connected_to(alice, monkeypatch, server, no_proxy):
    """No second lookup for DNS rebinding to answer differently: the name is resolved
    once, checked, and the request goes to that address with the name as its Host."""
    lookups: list[str] = []

    def resolve(host, port):
        lookups.append(host)
        return ["127.0.0.1"]

    monkeypatch.setattr(transfer, "_resolve", resolve)
    monkeypatch.setattr(transfer, "is_public", lambda address: address == "127.0.0.1")
    port = server.server_address[1]
    fetched = transfer.fetch_source(user=alice, url=f"http://rebind.invalid:{port}/plugin.py")
    assert fetched.content == PIPE
    assert lookups == ["rebind.invalid"]
    assert server.seen == [f"rebind.invalid:{port}"]


def test_only_staff_who_may_add_functions_fetch(bob, no_connections):
    with pytest.raises(PermissionDenied):
        transfer.fetch_source(user=bob, url="http://127.0.0.1/plugin.py")
