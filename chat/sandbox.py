"""Embeds: the HTML a plugin shows under a message (an `embeds` event, or the HTML an
action or a tool returned), each in a sandboxed frame of the chat page, served from
a route that carries no session.

Why a route of its own: embeds are a plugin's markup and script, untrusted by
design (they run: that is what they are for). They never go into the page itself.
The page draws each as `<iframe sandbox="allow-scripts">` (never allow-same-origin:
the frame's origin is opaque, so its script cannot reach the page, its cookies or
our API as the user) whose src is `/sandbox/embed/<token>/`. The token is signed
(django.core.signing, salted, expiring after CHAT_EMBED_TOKEN_SECONDS) and names
the message and the embed's digest: nobody can guess one, and it reveals only that
embed. The view reads the message row, never the session (the frame is opened
`credentialless` as well, where browsers support it, so no cookie even comes
with it), and answers with a policy of its own: `sandbox allow-scripts` (the same
opaque origin when the URL is opened on its own, outside the frame), scripts and
styles inline or from https, `frame-ancestors 'self'` and `X-Frame-Options:
SAMEORIGIN` (only our pages frame it), `Cache-Control: private, no-store`.

The frame is sized to its content: a small script appended to the embed posts its
height to the parent (`{"type": "fnplatform:embed-size", "height"}`), and the
page's static/js/events.js applies it to the frame whose window sent it, clamped.
The same file takes Open WebUI's prompts from an embed (`input:prompt`,
`input:prompt:submit`, `action:submit`), from our HTML embeds' frames only and only
while the user is in the frame posting (see there).

An embed that is an http(s) URL rather than HTML is framed directly, sandboxed the
same way (the page's policy allows https frames and our own).
"""

import hashlib
import re
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from chat.models import Message

SALT = "chat.sandbox.embed"
# What the frame's own document may do: run its script, inline or from https (chart
# libraries come from CDNs), in an opaque origin, framed only by our pages.
POLICY = "; ".join(
    [
        "sandbox allow-scripts",
        "default-src 'none'",
        "script-src 'unsafe-inline' 'unsafe-eval' https:",
        "style-src 'unsafe-inline' https:",
        "img-src data: blob: https:",
        "font-src data: https:",
        "media-src data: blob: https:",
        "connect-src https:",
        "frame-src https:",
        "form-action 'none'",
        "base-uri 'none'",
        "frame-ancestors 'self'",
    ]
)
# Appended to the embed: tells the parent the document's height, now and on change.
# In standards mode the body's own scroll height (plus its margins) is the content's,
# so a short embed lets its frame shrink; the root's is never less than the frame.
# In quirks mode (an embed with no doctype) the body's is the frame's as well: adding
# margins to it would grow the frame for ever, so the root's is taken as it is.
SIZER = """
<script>
(function () {
  "use strict";
  var last = -1;
  function contentHeight(body) {
    var style = getComputedStyle(body);
    return body.scrollHeight + parseFloat(style.marginTop) + parseFloat(style.marginBottom);
  }
  function size() {
    var body = document.body, root = document.documentElement;
    var standard = document.compatMode === "CSS1Compat" && body;
    var height = standard
      ? Math.ceil(contentHeight(body))
      : Math.max(root ? root.scrollHeight : 0, body ? body.scrollHeight : 0);
    if (height === last) return;
    last = height;
    parent.postMessage({ type: "fnplatform:embed-size", height: height }, "*");
  }
  addEventListener("load", size);
  if (typeof ResizeObserver === "function") {
    var watch = new ResizeObserver(size);
    watch.observe(document.documentElement);
    if (document.body) watch.observe(document.body);
  }
  size();
})();
</script>
"""
_URL_NOISE = re.compile(r"[\x00-\x20\x7f<>\"'`]")


def embed_digest(embed: str) -> str:
    return hashlib.sha256(embed.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def is_web_url(text: str) -> bool:
    """Whether `text` parses as an http(s) URL with a host (callers first refuse the
    characters they cannot have in one)."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def embed_url(embed: Any) -> str | None:
    """The embed as a URL to frame, when it is one (https, a host, no spaces or
    markup); None when it is HTML. Only https: the page's policy frames nothing else,
    so a plain-http URL would be a blank frame; it is shown as text instead."""
    if not isinstance(embed, str):
        return None
    text = embed.strip()
    if not text or len(text) > 4096 or _URL_NOISE.search(text):
        return None
    return text if is_web_url(text) and text[:6].lower() == "https:" else None


def embed_src(*, chat_id: str, message_id: str, embed: str) -> str:
    """Where the frame of one embed of a saved message loads it from."""
    url = embed_url(embed)
    if url is not None:
        return url
    claim = {"c": str(chat_id), "m": str(message_id), "h": embed_digest(embed)}
    token = signing.dumps(claim, salt=SALT, compress=True)
    return reverse("sandbox:embed", kwargs={"token": token})


def embed_get(token: str) -> str | None:
    """The HTML embed a token names, read from its message row; None when the token
    is forged, expired, or names an embed (or a message) that is gone."""
    try:
        claim = signing.loads(token, salt=SALT, max_age=settings.CHAT_EMBED_TOKEN_SECONDS)
    except (signing.BadSignature, ValueError):
        return None
    if not isinstance(claim, dict) or not all(isinstance(claim.get(k), str) for k in "cmh"):
        return None
    rows = Message.objects.filter(chat_id=claim["c"], message_id=claim["m"])
    embeds = rows.values_list("embeds", flat=True).first()
    for embed in embeds if isinstance(embeds, list) else []:
        if isinstance(embed, str) and embed_digest(embed) == claim["h"]:
            return embed
    return None


def _framed(response: HttpResponse) -> HttpResponse:
    response["Content-Security-Policy"] = POLICY
    response["X-Frame-Options"] = "SAMEORIGIN"
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
def embed(request: HttpRequest, token: str) -> HttpResponse:
    """One embed's HTML, for its sandboxed frame; 404 for a bad token. Reads neither
    the session nor the user: the token is the only credential."""
    html = embed_get(token)
    if html is None:
        # Not Http404: the project's 404 page would draw the layout, and read the session.
        missing = HttpResponse("No such embed.", status=404, content_type="text/plain")
        return _framed(missing)
    return _framed(HttpResponse(html + SIZER, content_type="text/html; charset=utf-8"))
