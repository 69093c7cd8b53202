"""Moving functions in and out: fetch from a URL, import Open WebUI export JSON."""

import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from fnplatform.permissions import require_perm, require_staff
from functions.models import Function
from functions.services.functions import epoch, function_create, function_update
from valves.services import valves_public_global, valves_update_global

_GITHUB_BLOB = re.compile(r"^https://github\.com/([^/]+)/([^/]+)/blob/(.+)$")
_GITHUB_TREE = re.compile(r"^https://github\.com/([^/]+)/([^/]+)/tree/(.+?)/?$")
_ENTRY_FILES = {"main.py", "index.py", "__init__.py"}


def github_raw_url(url: str) -> str:
    """Turn GitHub blob and tree URLs into raw file URLs (tree -> its main.py)."""
    url = url.strip()
    if match := _GITHUB_BLOB.match(url):
        owner, repo, rest = match.groups()
        return f"https://raw.githubusercontent.com/{owner}/{repo}/{rest}"
    if match := _GITHUB_TREE.match(url):
        owner, repo, rest = match.groups()
        return f"https://raw.githubusercontent.com/{owner}/{repo}/{rest}/main.py"
    return url


def name_from_url(url: str) -> str:
    """Name a fetched file after itself, or after its folder for main.py and friends."""
    parts = [p for p in urlparse(url).path.split("/") if p]
    if not parts:
        return "function"
    filename = parts[-1]
    if filename in _ENTRY_FILES and len(parts) > 1:
        return parts[-2]
    return filename.rsplit(".", 1)[0]


@dataclass
class FetchedSource:
    name: str
    content: str
    url: str


def fetch_source(*, user, url: str) -> FetchedSource:
    """Download a plugin file to create a function from, with a timeout and a size cap.
    Nothing is saved. Hosts that resolve to a loopback, private, link-local, multicast,
    reserved or unspecified address are refused, at every redirect, unless
    FUNCTIONS_IMPORT_ALLOW_PRIVATE is on; the checked address is the one connected to."""
    require_perm(user, "functions.add_function")
    raw = github_raw_url(url)
    try:
        scheme = urlparse(raw).scheme
    except ValueError as exc:  # "http://[" is not a URL at all
        raise ValidationError({"url": [f"Not a valid URL: {exc}."]}) from exc
    if scheme not in {"http", "https"}:
        raise ValidationError({"url": ["Only http and https URLs can be imported."]})
    limit = settings.FUNCTIONS_IMPORT_MAX_BYTES
    try:
        body = _download(raw, limit, settings.FUNCTIONS_IMPORT_TIMEOUT)
    except httpx.TimeoutException as exc:
        raise ValidationError({"url": [f"Timed out fetching {raw}."]}) from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise ValidationError({"url": [f"Could not fetch {raw}: {exc}"]}) from exc
    try:
        content = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError({"url": ["The file is not UTF-8 text."]}) from exc
    return FetchedSource(name=name_from_url(raw), content=content, url=raw)


MAX_REDIRECTS = 5


def _download(url: str, limit: int, timeout: float) -> bytes:
    """GET a URL, following redirects one hop at a time: each hop's host is resolved
    and checked, and the request goes to the checked address (no second lookup that
    DNS rebinding could answer differently)."""
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            target = httpx.URL(url)
            address = _checked_address(target)
            pinned = target.copy_with(host=address)
            headers = {"Host": target.netloc.decode("ascii")}
            extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
            request = client.build_request("GET", pinned, headers=headers, extensions=extensions)
            response = client.send(request, stream=True)
            try:
                if response.is_redirect and response.headers.get("location"):
                    url = str(target.join(response.headers["location"]))
                    if urlparse(url).scheme not in {"http", "https"}:
                        raise ValidationError({"url": [f"{url} is not an http(s) URL."]})
                    continue
                return _body(response, url, limit)
            finally:
                response.close()
    raise ValidationError({"url": [f"More than {MAX_REDIRECTS} redirects fetching the file."]})


def _body(response: httpx.Response, url: str, limit: int) -> bytes:
    if response.status_code != 200:
        raise ValidationError({"url": [f"Fetching {url} answered HTTP {response.status_code}."]})
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise ValidationError(
                {"url": [f"The file is larger than the {limit // 1024} KiB limit."]}
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _resolve(host: str, port: int) -> list[str]:
    """The addresses a host name resolves to (an address literal: itself)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


# Deprecated site-local IPv6 (RFC 3879): private in practice, not flagged by ipaddress.
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")


def is_public(address: str) -> bool:
    """Whether an address is a public one a URL import may reach by default."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _SITE_LOCAL:
            return False
        # IPv4 carried inside IPv6 (mapped, 6to4, Teredo) must be public too.
        embedded = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
        if any(inner is not None and not is_public(str(inner)) for inner in embedded):
            return False
    return not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def _checked_address(url: httpx.URL) -> str:
    """Resolve a URL's host; refuse it if any of its addresses is not public (unless
    FUNCTIONS_IMPORT_ALLOW_PRIVATE); return the address to connect to."""
    host = url.host
    if not host:
        raise ValidationError({"url": [f"{url} names no host."]})
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        addresses = _resolve(host, port)
    except (OSError, UnicodeError, ValueError) as exc:
        raise ValidationError({"url": [f"Could not resolve {host}: {exc}"]}) from exc
    if not addresses:
        raise ValidationError({"url": [f"Could not resolve {host}."]})
    if not settings.FUNCTIONS_IMPORT_ALLOW_PRIVATE:
        private = [a for a in addresses if not is_public(a)]
        if private:
            raise ValidationError(
                {
                    "url": [
                        f"{host} resolves to {private[0]}, a loopback, private or reserved "
                        "address: importing from it is refused (an administrator may allow "
                        "it with FNPLATFORM_IMPORT_ALLOW_PRIVATE=1)."
                    ]
                }
            )
    return addresses[0]


def _item_fields(item: dict, index: int) -> tuple[str, str, str, dict]:
    if not isinstance(item, dict):
        raise ValidationError(f"Item {index + 1} is not an object.")
    missing = [key for key in ("id", "content") if not isinstance(item.get(key), str)]
    if missing:
        raise ValidationError(f"Item {index + 1} has no {' or '.join(missing)}.")
    meta = item.get("meta") if isinstance(item.get("meta"), dict) else {}
    return item["id"], str(item.get("name") or ""), item["content"], meta


@transaction.atomic
def function_import_items(*, user, items: list, overwrite: bool = False) -> list[Function]:
    """Import Open WebUI export items; all or nothing, errors name the item.

    New ids need functions.add_function, overwritten ones functions.change_function
    (function_create and function_update check them item by item)."""
    require_staff(user)
    if not isinstance(items, list):
        raise ValidationError("The import must be a JSON list of functions.")
    imported = []
    for index, item in enumerate(items):
        function_id, name, content, meta = _item_fields(item, index)
        try:
            imported.append(_import_one(user, item, function_id, name, content, meta, overwrite))
        except ValidationError as exc:
            raise ValidationError(f"{function_id}: {' '.join(exc.messages)}") from exc
    return imported


def _import_one(user, item, function_id, name, content, meta, overwrite) -> Function:

    existing = Function.objects.filter(id=function_id.lower()).first()
    if existing and not overwrite:
        raise ValidationError("a function with this id exists (choose overwrite to replace it)")
    if existing:
        function = function_update(
            user=user,
            function=existing,
            name=name or None,
            content=content,
            meta=meta,
            note="Imported",
        )
    else:
        function = function_create(
            user=user,
            id=function_id,
            name=name,
            content=content,
            meta=meta,
            note="Imported",
            is_global=bool(item.get("is_global")),
        )
    if isinstance(item.get("valves"), dict) and item["valves"]:
        valves_update_global(user=user, function=function, values=item["valves"])
    return function


def function_export_items(*, user, functions, include_valves: bool = False) -> list[dict[str, Any]]:
    """Return functions in Open WebUI's export format; secret valves are never included."""
    require_perm(user, "functions.view_function")
    if include_valves:
        require_perm(user, "valves.view_functionvalves")
    items = []
    for function in functions:
        item = {
            "id": function.id,
            "user_id": str(function.created_by_id or ""),
            "name": function.name,
            "type": function.type,
            "content": function.content,
            "meta": function.meta,
            "is_active": function.is_active,
            "is_global": function.is_global,
            "updated_at": epoch(function.updated_at),
            "created_at": epoch(function.created_at),
        }
        if include_valves:
            item["valves"] = valves_public_global(function=function)
        items.append(item)
    return items
