"""What a model or a plugin says, made into HTML that is safe to put in the chat page.

Everything here is untrusted text: a model can be talked into writing anything, and a
plugin's output is whatever its author (or its upstream) sends. Three walls stand
between that text and a script running in the page, each enough on its own for what
it covers and none relied on alone:

1. The renderer. markdown-it runs with ``html=False``, so raw HTML in the text comes
   out as text (``&lt;script&gt;``), and its link check refuses ``javascript:``,
   ``vbscript:``, ``file:`` and non-image ``data:`` targets. Code is highlighted by
   Pygments with CSS classes, never inline styles.
2. nh3 (ammonia). The renderer's whole output is cleaned again with an explicit
   allowlist of the tags, attributes, classes and URL schemes that Markdown needs, so
   a renderer bug or a future option that lets markup through still meets a sanitizer.
3. The page's Content-Security-Policy, with nonces and no inline script, so markup
   that got past both could still not run script.

``render_markdown`` is for answers, ``render_text`` for what is shown as typed (user
messages, the tail of an answer still streaming), ``safe_icon_src`` for a plugin's icon.
"""

import logging
import re
from urllib.parse import urlsplit

import nh3
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

logger = logging.getLogger(__name__)

# Past this the text is shown as plain text: markdown-it is linear but slow on some
# inputs (100,000 characters of "![" take it 3 s), and one answer must not hold a worker
# longer. 100,000 characters is some 25,000 tokens, longer than answers mostly are.
MAX_MARKDOWN_CHARS = 100_000
# Past this a code block is shown unhighlighted: some lexers' regexes backtrack badly.
MAX_HIGHLIGHT_CHARS = 50_000
# An icon larger than this is not shown (the loader already warns past 64 KiB).
MAX_ICON_CHARS = 256 * 1024

LIGHT_STYLE = "default"
DARK_STYLE = "github-dark"

# --- The first wall: the renderer ------------------------------------------------------

_FORMATTER = HtmlFormatter(nowrap=True)  # spans with classes only; the <pre> is ours
# A fence's info string is free text; only a plain language name becomes a class.
_LANGUAGE = re.compile(r"[A-Za-z0-9_+#.-]{1,32}")


def _lexer(language: str) -> Lexer | None:
    if not _LANGUAGE.fullmatch(language):
        return None
    try:
        # stripnl=False: the block shows its blank lines as written.
        return get_lexer_by_name(language, stripnl=False)
    except ClassNotFound:
        return None


def _highlighted(code: str, language: str) -> str:
    if len(code) <= MAX_HIGHLIGHT_CHARS:
        try:
            lexer = _lexer(language)
            if lexer is not None:
                return highlight(code, lexer, _FORMATTER)
        except Exception:
            logger.exception("Pygments failed on a %r code block", language)
    return escape(code)


def _highlight(code: str, language: str, _attrs: str) -> str:
    """The whole <pre> for a fenced block (markdown-it uses a result that starts with <pre
    as it is). Never raises: a lexer that fails leaves the code plain."""
    body = _highlighted(code, language)
    code_class = f' class="language-{escape(language)}"' if _LANGUAGE.fullmatch(language) else ""
    return f'<pre class="highlight"><code{code_class}>{body}</code></pre>'


_ALIGNMENTS = {"left", "center", "right"}


def _align_cells(state: StateCore) -> None:
    """Tables' column alignment as align="…": markdown-it writes style="text-align:…",
    and the sanitizer drops every style attribute (CSS in an attribute can still
    overlay the page or fetch URLs)."""
    for token in state.tokens:
        if token.type not in ("th_open", "td_open"):
            continue
        style = token.attrs.pop("style", None)
        align = str(style).removeprefix("text-align:") if style else ""
        if align in _ALIGNMENTS:
            token.attrSet("align", align)


# "[1]", "[12]": a reference to the answer's numbered sources (Open WebUI's models are
# asked to cite so). "[1, 2]" and "[1][2]" are references each.
_CITATION = re.compile(r"\[(\d{1,3})(?:,\s*\d{1,3})*\]")
_CITATION_NUMBER = re.compile(r"\d{1,3}")


def _citation_tokens(text: str, citations: list[tuple[str, str]], state: StateCore) -> list:
    """A text token's content as text and links: each "[n]" that names one of the
    sources links to its entry in the list under the answer."""
    tokens, at = [], 0
    for match in _CITATION.finditer(text):
        numbers = [int(n) for n in _CITATION_NUMBER.findall(match.group(0))]
        if not all(1 <= n <= len(citations) for n in numbers):
            continue
        if match.start() > at:
            tokens.append(_text_token(state, text[at : match.start()]))
        for n in numbers:
            href, title = citations[n - 1]
            link = Token("link_open", "a", 1, attrs={"href": href, "title": title})
            link.attrSet("class", "citation-ref")
            tokens += [link, _text_token(state, f"[{n}]"), Token("link_close", "a", -1)]
        at = match.end()
    if at < len(text):
        tokens.append(_text_token(state, text[at:]))
    return tokens


def _text_token(state: StateCore, content: str) -> Token:
    token = Token("text", "", 0)
    token.content = content
    return token


def _link_citations(state: StateCore) -> None:
    """Inline "[n]" references, in text only (not code, not inside a link), become links
    to the sources render_markdown was given (env["citations"])."""
    citations = state.env.get("citations") if isinstance(state.env, dict) else None
    if not citations:
        return
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children, depth = [], 0
        for token in block.children:
            depth += {"link_open": 1, "link_close": -1}.get(token.type, 0)
            if token.type == "text" and not depth and _CITATION.search(token.content):
                children += _citation_tokens(token.content, citations, state)
            else:
                children.append(token)
        block.children = children


def _markdown() -> MarkdownIt:
    md = MarkdownIt(
        "commonmark",
        # linkify needs linkify-it-py, which the project does not install.
        {"html": False, "linkify": False, "highlight": _highlight},
    ).enable(["table", "strikethrough"])
    md.core.ruler.push("align_cells", _align_cells)
    md.core.ruler.push("link_citations", _link_citations)
    return md


_MD = _markdown()

# --- The second wall: the sanitizer ----------------------------------------------------

_TAGS = {
    *("p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6"),
    *("strong", "em", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li"),
    *("table", "thead", "tbody", "tr", "th", "td", "a", "img", "span", "div"),
}
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},  # "3. item" starts the list at 3
    "code": {"class"},  # language-… only, see _attribute_filter
}
_CLASSES = {
    "a": {"citation-ref"},  # an inline "[1]" linked to the answer's sources
    "span": set(STANDARD_TYPES.values()) - {""},  # Pygments' token classes
    "pre": {"highlight"},
    "div": {"highlight"},
}
_URL_SCHEMES = {"http", "https", "mailto"}
_IMAGE_SCHEMES = {"http", "https"}
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
# Browsers drop these from a URL before they read its scheme ("java\tscript:").
_URL_NOISE = re.compile(r"[\x00-\x20\x7f]")


def _scheme(url: str) -> str | None:
    match = _SCHEME.match(_URL_NOISE.sub("", url))
    return match.group(1).lower() if match else None


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    """The checks nh3's allowlist cannot say: runs after its URL scheme check."""
    if tag == "img" and attribute == "src":
        # Relative is fine (Open WebUI's /api/v1/files/…/content); mailto: is not an image.
        scheme = _scheme(value)
        return value if scheme is None or scheme in _IMAGE_SCHEMES else None
    if tag == "code" and attribute == "class":
        language = value.removeprefix("language-")
        return value if language != value and _LANGUAGE.fullmatch(language) else None
    if tag == "ol" and attribute == "start":
        return value if value.isascii() and value.isdigit() and len(value) <= 9 else None
    return value


_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    attributes=_ATTRIBUTES,
    tag_attribute_values={"th": {"align": _ALIGNMENTS}, "td": {"align": _ALIGNMENTS}},
    allowed_classes=_CLASSES,
    # Images load lazily and tell the image's host nothing of the chat's URL.
    set_tag_attribute_values={"img": {"loading": "lazy", "referrerpolicy": "no-referrer"}},
    url_schemes=_URL_SCHEMES,
    link_rel="noopener noreferrer nofollow",
    attribute_filter=_attribute_filter,
)

# --- Public ----------------------------------------------------------------------------


def _scrub(text: object) -> str:
    """The text as a str that encodes to UTF-8: NULs and lone surrogates (which a JSON
    body can carry as "\\ud800") become U+FFFD, where they would crash nh3 or the
    response's encoding."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # UTF-16 with surrogatepass joins split pairs back and replaces the lone ones.
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def render_markdown(text: str, citations: list[tuple[str, str]] | None = None) -> SafeString:
    """An answer's Markdown (CommonMark, tables, strikethrough, highlighted code) as
    sanitized HTML. Raw HTML in the text is shown as text. `citations` are the
    answer's numbered sources, as (href, title): an inline "[n]" links to the n-th.
    Never raises: if rendering fails the text is shown as render_text shows it."""
    text = _scrub(text)
    if len(text) > MAX_MARKDOWN_CHARS:
        return render_text(text)
    env = {"citations": [(_scrub(h), _scrub(t)) for h, t in citations or []]}
    try:
        return mark_safe(_CLEANER.clean(_MD.render(text, env)))
    except Exception:
        # A renderer bug must not take the page down; escaped text is always safe.
        logger.exception("Markdown rendering failed; shown as plain text")
        return render_text(text)


def render_text(text: str) -> SafeString:
    """The text as typed: HTML-escaped, each line break a <br>, no Markdown."""
    text = _scrub(text).replace("\r\n", "\n").replace("\r", "\n")
    return mark_safe(escape(text).replace("\n", "<br>\n"))


_DATA_IMAGE = re.compile(
    r"data:image/(?:png|jpeg|gif|webp|svg\+xml)"
    # ;charset=utf-8, ;utf8 and the like, but not a ;base64 whose payload is not base64
    r"(?:;(?!base64[,;])[A-Za-z0-9_.+-]+(?:=[A-Za-z0-9_.+-]+)?)*"
    r"(?:;base64,[A-Za-z0-9+/=]*|,[^\x00-\x1f\x7f]*)",
    re.IGNORECASE,
)
_URL_BAD_CHARS = re.compile(r"[\x00-\x20\x7f]")


def safe_icon_src(value: object) -> str | None:
    """A plugin's icon (``icon_url``/``icon``) if it may be an <img src>, else None.

    Allowed: ``data:image/(png|jpeg|gif|webp|svg+xml)`` URIs, base64 or URL-encoded, as
    Open WebUI plugins write them, and http(s) URLs; at most MAX_ICON_CHARS characters.

    The result is only ever to be put in an ``<img src="…">`` attribute, autoescaped by
    the template. An SVG loaded as an image runs no script and loads nothing else, so a
    hostile SVG there is only a picture. Never use it as an <object>, <embed> or
    <iframe> source, a link to follow, or inline markup: there an SVG's script runs.
    """
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > MAX_ICON_CHARS:
        return None
    if _DATA_IMAGE.fullmatch(value):
        return value
    if _URL_BAD_CHARS.search(value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. a malformed IPv6 host
        return None
    if parts.scheme.lower() in ("http", "https") and parts.hostname:
        return value
    return None


def code_css() -> str:
    """The stylesheet static/css/code.css holds, for the classes _highlight emits."""
    light = HtmlFormatter(style=LIGHT_STYLE)
    dark = HtmlFormatter(style=DARK_STYLE)

    def rules(formatter: HtmlFormatter) -> str:
        # Not get_style_defs(): its line-number rules and bare `pre { … }` would style
        # every <pre> on the page; these are all under .highlight.
        lines = formatter.get_background_style_defs(".highlight")
        lines += formatter.get_token_style_defs(".highlight")
        return "\n".join(f"  {line}" for line in lines)

    return (
        "/* Pygments classes for code blocks in chat answers (chat/markdown.py).\n"
        f"   Light: {LIGHT_STYLE}, dark: {DARK_STYLE}. Generated, do not edit; after a\n"
        "   Pygments upgrade or a change of style, regenerate with:\n"
        "   .venv/bin/python -c 'from chat.markdown import code_css; "
        'print(code_css(), end="")\' > static/css/code.css\n'
        "   Each style is in its own media block so that none of the light one's bold or\n"
        "   italics carries over into the dark one. */\n"
        "@media not all and (prefers-color-scheme: dark) {\n"
        f"{rules(light)}\n"
        "}\n"
        "@media (prefers-color-scheme: dark) {\n"
        f"{rules(dark)}\n"
        "}\n"
    )
