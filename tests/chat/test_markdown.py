"""chat.markdown: Markdown answers, plain text and plugin icons made safe for the page."""

import re
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.utils.safestring import SafeString

from chat import markdown
from chat.markdown import (
    MAX_ICON_CHARS,
    MAX_MARKDOWN_CHARS,
    code_css,
    render_markdown,
    render_text,
    safe_icon_src,
)

ROOT = Path(__file__).resolve().parents[2]
ALLOWED_TAGS = {
    *("p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s"),
    *("code", "pre", "blockquote", "ul", "ol", "li", "table", "thead", "tbody", "tr"),
    *("th", "td", "a", "img", "span", "div"),
}


class _Elements(HTMLParser):
    """Every start tag in a fragment, with its attributes, as a browser would read them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {name: value or "" for name, value in attrs}))


def elements(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser.elements


def url_scheme(url: str) -> str | None:
    """The scheme a browser would see: it drops whitespace and controls first."""
    match = re.match(r"([a-z][a-z0-9+.-]*):", re.sub(r"[\x00-\x20\x7f]", "", url).lower())
    return match.group(1) if match else None


def assert_inert(html: str) -> None:
    """No way for the fragment to run script, restyle the page or leave for a bad URL."""
    for bad in ("<script", "<svg", "<iframe", "<object", "<embed", "<style", "<form"):
        assert bad not in html.lower()
    for tag, attrs in elements(html):
        assert tag in ALLOWED_TAGS, tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert name != "style", tag
            assert url_scheme(value) not in ("javascript", "vbscript", "data"), (tag, name)
        if "href" in attrs:
            assert url_scheme(attrs["href"]) in (None, "http", "https", "mailto"), attrs
        if "src" in attrs:
            assert url_scheme(attrs["src"]) in (None, "http", "https"), attrs


# --- Markdown ---------------------------------------------------------------------------


def test_the_result_is_a_safe_string():
    assert isinstance(render_markdown("hi"), SafeString)
    assert isinstance(render_text("hi"), SafeString)


def test_headings_and_paragraphs():
    html = render_markdown("# One\n\n## Two\n\n###### Six\n\nSome *em* and **strong**.")
    assert "<h1>One</h1>" in html
    assert "<h2>Two</h2>" in html
    assert "<h6>Six</h6>" in html
    assert "<p>Some <em>em</em> and <strong>strong</strong>.</p>" in html


def test_lists_keep_their_start_number():
    html = render_markdown("- a\n- b\n\n3. c\n4. d\n")
    assert "<ul>\n<li>a</li>\n<li>b</li>\n</ul>" in html
    assert '<ol start="3">\n<li>c</li>\n<li>d</li>\n</ol>' in html


def test_blockquotes_rules_and_strikethrough():
    html = render_markdown("> quoted\n\n---\n\n~~gone~~")
    assert "<blockquote>\n<p>quoted</p>\n</blockquote>" in html
    assert "<hr>" in html
    assert "<s>gone</s>" in html


def test_tables_align_columns_without_style_attributes():
    html = render_markdown("| a | b | c | d |\n|:--|--:|:-:|---|\n| 1 | 2 | 3 | 4 |\n")
    assert "<table>" in html and "<thead>" in html and "<tbody>" in html
    assert '<th align="left">a</th>' in html
    assert '<th align="right">b</th>' in html
    assert '<td align="center">3</td>' in html
    assert "<td>4</td>" in html
    assert "style=" not in html


def test_links_get_rel_and_keep_their_title():
    html = render_markdown('[site](https://example.com/a?b=1&c=2 "T") [me](mailto:a@b.example)')
    assert (
        '<a href="https://example.com/a?b=1&amp;c=2" title="T" '
        'rel="noopener noreferrer nofollow">site</a>'
    ) in html
    assert '<a href="mailto:a@b.example" rel="noopener noreferrer nofollow">me</a>' in html


def test_autolinks_work_but_bare_urls_are_not_linked():
    html = render_markdown("<https://example.com> and https://example.org")
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">' in html
    assert "https://example.org</p>" in html  # no linkify


def test_relative_links_and_images_are_kept():
    html = render_markdown("[chat](/c/1) ![Generated Image](/api/v1/files/f1/content)")
    assert '<a href="/c/1" rel="noopener noreferrer nofollow">chat</a>' in html
    assert 'src="/api/v1/files/f1/content"' in html


def test_images_are_http_only_lazy_and_send_no_referrer():
    html = render_markdown("![cat](https://example.com/cat.png 'A cat')")
    ((tag, attrs),) = elements(html)[1:]
    assert tag == "img"
    assert attrs == {
        "src": "https://example.com/cat.png",
        "alt": "cat",
        "title": "A cat",
        "loading": "lazy",
        "referrerpolicy": "no-referrer",
    }


@pytest.mark.parametrize(
    "source",
    ["![x](mailto:a@b.example)", "![x](data:image/png;base64,iVBORw0KGgo=)", "![x](ftp://h/x)"],
)
def test_images_from_other_schemes_lose_their_src(source):
    html = render_markdown(source)
    assert "<img" in html
    assert "src=" not in html


def test_code_with_a_language_is_highlighted_with_classes():
    html = render_markdown('```python\ndef f():\n    return "<b>"\n```\n')
    assert html.startswith('<pre class="highlight"><code class="language-python">')
    assert '<span class="k">def</span>' in html
    assert '<span class="nf">f</span>' in html
    assert '<span class="s2">"&lt;b&gt;"</span>' in html
    assert "style=" not in html


def test_code_in_an_unknown_language_is_shown_plain():
    html = render_markdown("```no-such-language\nx = 1\n```\n")
    assert html == (
        '<pre class="highlight"><code class="language-no-such-language">x = 1\n</code></pre>\n'
    )


def test_code_without_a_language_and_with_a_junk_info_string():
    plain = render_markdown("```\nplain\n```")
    assert plain == '<pre class="highlight"><code>plain\n</code></pre>\n'
    html = render_markdown('```py"onmouseover=alert(1)\nx\n```')
    assert html == '<pre class="highlight"><code>x\n</code></pre>\n'


HTML_CODE = '<script>alert(1)</script><img src=x onerror="alert(1)">'


@pytest.mark.parametrize(
    "source", [f"```\n{HTML_CODE}\n```", f"```x\n{HTML_CODE}\n```", "    " + HTML_CODE]
)
def test_html_in_code_is_shown_escaped(source):
    html = render_markdown(source)
    # nh3 leaves quotes in text as they are: only <, > and & need escaping there.
    assert '&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror="alert(1)"&gt;\n' in html
    assert_inert(html)


def test_highlighted_html_in_code_is_shown_escaped():
    html = render_markdown(f"```html\n{HTML_CODE}\n```")
    assert '<span class="p">&lt;</span><span class="nt">script</span>' in html
    assert_inert(html)


def test_blank_lines_in_code_are_kept():
    html = render_markdown("```python\n\n\nx = 1\n\n\n```")
    assert '<code class="language-python">\n\n<span class="n">x</span>' in html
    assert '<span class="mi">1</span>\n\n\n</code>' in html


@pytest.mark.parametrize("step", ["get_lexer_by_name", "highlight"])
def test_a_failing_lexer_leaves_the_code_plain(monkeypatch, step):
    def boom(*args, **kwargs):
        raise RuntimeError("lexer bug")

    monkeypatch.setattr(markdown, step, boom)
    html = render_markdown("```python\nx = '<'\n```\n\nafter")
    assert "<code class=\"language-python\">x = '&lt;'\n</code>" in html
    assert "<p>after</p>" in html


def test_huge_code_is_not_highlighted():
    code = "x = 1\n" * (markdown.MAX_HIGHLIGHT_CHARS // 6 + 1)
    html = render_markdown(f"```python\n{code}```")
    assert "<span" not in html
    assert html.count("x = 1\n") == code.count("\n")


# --- The XSS battery ---------------------------------------------------------------------

ATTACKS = [
    "<script>alert(1)</script>",
    "[x](javascript:alert(1))",
    "[x](JAVASCRIPT:alert(1))",
    "[x](java&#x73;cript:alert(1))",
    "[x](java%73cript:alert(1))",
    "[x](\tjavascript:alert(1))",
    "[x](<javascript:alert(1)>)",
    "[x]\n\n[x]: javascript:alert(1)",
    "![x](javascript:alert(1))",
    "![x](vbscript:msgbox(1))",
    "<img src=x onerror=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<svg onload=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "<iframe src=https://evil.example></iframe>",
    '<p style="position:fixed;inset:0">cover</p>',
    "[x](data:text/html;base64,PHNjcmlwdD4=)",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "<javascript:alert(1)>",
    "<JavaScript:alert(1)>",
    "<vbscript:msgbox(1)>",
    "<data:text/html,<script>alert(1)</script>>",
    '[x](https://a.example "t" onclick="alert(1)")',
    '[x](https://a.example"onmouseover="alert(1))',
    "`<script>alert(1)</script>`",
    "```\n<script>alert(1)</script>\n```",
    "| <script>alert(1)</script> |\n|---|\n| <img src=x onerror=alert(1)> |",
    "> <iframe srcdoc='<script>alert(1)</script>'>",
    "<!-- --><script>alert(1)</script><!-- -->",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#60;script&#62;alert(1)&#60;/script&#62;",
]


@pytest.mark.parametrize("source", ATTACKS)
def test_attacks_come_out_inert(source):
    html = render_markdown(source)
    assert_inert(html)
    for _, attrs in elements(html):
        assert not any("javascript:" in value.lower() for value in attrs.values()), attrs
    assert html  # shown, as text, not swallowed


def test_raw_html_is_shown_as_text():
    assert render_markdown("<b>hi</b> <script>alert(1)</script>") == (
        "<p>&lt;b&gt;hi&lt;/b&gt; &lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
    )


def test_script_links_are_not_links():
    for source in ("[x](javascript:alert(1))", "<javascript:alert(1)>", "[x](JAVASCRIPT:x)"):
        assert "<a" not in render_markdown(source), source


# The second wall on its own: raw markup as if the renderer had let it through.
LEAKED = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="java&#x73;cript:alert(1)">x</a>',
    '<a href=" JaVaScRiPt:alert(1)">x</a>',
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>',
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    '<img src="mailto:a@b.example">',
    "<svg><script>alert(1)</script></svg>",
    "<svg onload=alert(1)><circle/></svg>",
    "<math><mi xlink:href=javascript:alert(1)>x</mi></math>",
    "<iframe src=https://evil.example></iframe>",
    "<object data=https://evil.example></object><embed src=https://evil.example>",
    "<form action=https://evil.example><input name=p></form>",
    '<p style="position:fixed;inset:0">cover</p>',
    "<style>body{display:none}</style>",
    '<div onclick="alert(1)" class="highlight">x</div>',
    '<a href="https://a.example" target="_top" rel="opener">x</a>',
]


@pytest.mark.parametrize("raw", LEAKED)
def test_the_sanitizer_alone_stops_leaked_markup(raw):
    assert_inert(markdown._CLEANER.clean(raw))


def test_the_sanitizer_keeps_only_known_classes_and_alignments():
    clean = markdown._CLEANER.clean(
        '<span class="k fixed inset-0">a</span><pre class="highlight overlay">b</pre>'
        '<code class="language-py x">c</code><code class="evil">d</code>'
        '<table><tr><td align="justify">e</td><td align="right">f</td></tr></table>'
    )
    assert '<span class="k">a</span>' in clean
    assert '<pre class="highlight">b</pre>' in clean
    assert "<code>c</code><code>d</code>" in clean
    assert "<td>e</td>" in clean and '<td align="right">f</td>' in clean
    assert 'rel="noopener noreferrer nofollow"' in markdown._CLEANER.clean(LEAKED[-1])
    assert "target" not in markdown._CLEANER.clean(LEAKED[-1])


# --- Never raises -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "",
        "\x00",
        "a\x00b\x00<script>\x00",
        "lone \ud800 and \udfff surrogates",
        "# \udc80\n\n```py\n\ud83d\n```",
        "> " * 5000 + "deep",
        ">" * 5000,
        "- " * 5000 + "deep",
        "*" * 20000,
        "[" * 20000 + "]" * 20000,
        "|" * 20000,
        "`" * 20000,
        "\r\n\r\n\r",
        "\u202e\ufeff\u200b",
    ],
)
def test_odd_input_renders_to_utf8(source):
    html = render_markdown(source)
    html.encode("utf-8")  # a lone surrogate would fail here, or in nh3
    assert_inert(html)


def test_nul_and_lone_surrogates_become_replacement_characters():
    assert render_markdown("a\x00b\ud800c") == "<p>a\ufffdb\ufffdc</p>\n"
    assert render_text("a\x00b\udfffc") == "a\ufffdb\ufffdc"
    # A pair split into two lone halves (as JSON's "\\ud83d\\ude00") is joined back.
    assert render_markdown("\ud83d\ude00") == "<p>\U0001f600</p>\n"


def test_none_renders_as_nothing():
    assert render_markdown(None) == ""  # type: ignore[arg-type]
    assert render_text(None) == ""  # type: ignore[arg-type]


def test_huge_input_is_shown_as_text_quickly():
    source = "![" * MAX_MARKDOWN_CHARS  # markdown-it's slowest input found
    started = time.monotonic()
    html = render_markdown(source)
    assert time.monotonic() - started < 2
    assert html == source
    assert "<p>" not in html


def test_input_just_under_the_limit_is_still_markdown():
    source = "**a**" + "x" * (MAX_MARKDOWN_CHARS - 5)
    assert render_markdown(source).startswith("<p><strong>a</strong>x")


def test_a_renderer_failure_falls_back_to_escaped_text(monkeypatch):
    def boom(text):
        raise RecursionError("renderer bug")

    monkeypatch.setattr(markdown._MD, "render", boom)
    assert render_markdown("**a** <b>\nc") == "**a** &lt;b&gt;<br>\nc"


def test_a_little_fuzz():
    import random

    rng = random.Random(1234)
    pieces = [*"<>[]()!*_`~|-#:&;\"'/\\ \n\t\x00", "\ud800", "```", "](", "javascript:"]
    pieces += ["&#x6a;", "<svg", "<img ", "onerror=", "\n\n", "|-|", "> ", "1. ", "data:"]
    for _ in range(500):
        source = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 200)))
        html = render_markdown(source)
        html.encode("utf-8")
        assert_inert(html)


# --- Plain text ----------------------------------------------------------------------------


def test_render_text_escapes_and_keeps_line_breaks():
    assert render_text("a <b>&'\"\r\nb\rc\n\nd") == (
        "a &lt;b&gt;&amp;&#x27;&quot;<br>\nb<br>\nc<br>\n<br>\nd"
    )


def test_render_text_does_no_markdown():
    assert render_text("**x** [l](https://e.example) # h") == "**x** [l](https://e.example) # h"


@pytest.mark.parametrize("source", ATTACKS)
def test_render_text_makes_no_elements_but_br(source):
    assert {tag for tag, _ in elements(render_text(source))} <= {"br"}


# --- Icons -----------------------------------------------------------------------------------

SVG_B64 = (
    "data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHZp"
    "ZXdCb3g9IjAgMCAyNCAyNCIvPg=="
)


@pytest.mark.parametrize(
    "icon",
    [
        SVG_B64,
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk",
        "data:image/jpeg;base64,/9j/4AAQSkZJRg==",
        "data:image/gif;base64,R0lGODlhAQABAAAAACw=",
        "data:image/webp;base64,UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==",
        "data:image/svg+xml,%3Csvg%20xmlns%3D%22http%3A%2F%2Fwww.w3.org%2F2000%2Fsvg%22%2F%3E",
        "data:image/svg+xml;charset=utf-8,<svg xmlns='http://www.w3.org/2000/svg'/>",
        "data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg'/>",
        "DATA:IMAGE/PNG;BASE64,iVBORw0KGgo=",
        "https://example.com/icon.png",
        "http://example.com:8080/i.svg?v=2#x",
    ],
)
def test_icons_that_may_be_shown(icon):
    assert safe_icon_src(icon) == icon


def test_an_icon_is_trimmed():
    assert safe_icon_src("  https://example.com/i.png\n") == "https://example.com/i.png"


@pytest.mark.parametrize(
    "icon",
    [
        None,
        "",
        "   ",
        42,
        ["https://example.com/i.png"],
        "javascript:alert(1)",
        " JavaScript:alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "data:text/html,<script>alert(1)</script>",
        "data:image/svg+xml",
        "data:image/bmp;base64,Qk0=",
        "data:image/svg+xml;base64,PHN2Zz4=<script>",
        "data:image/png;base64,iVBO\nRw0KGgo=",
        "data:image/svg+xml,<svg>\x00</svg>",
        "data:application/octet-stream;base64,AAAA",
        "ftp://example.com/i.png",
        "file:///etc/passwd",
        "//example.com/i.png",
        "/static/i.png",
        "icon.png",
        "https://",
        "https:///i.png",
        "https://exa mple.com/i.png",
        "https://example.com/i.png\x00",
        "https://[::1/i.png",
        "mailto:a@b.example",
    ],
)
def test_icons_that_may_not(icon):
    assert safe_icon_src(icon) is None


def test_icons_past_the_size_cap_are_refused():
    head = "data:image/png;base64,"
    assert safe_icon_src(head + "A" * (MAX_ICON_CHARS - len(head))) is not None
    assert safe_icon_src(head + "A" * (MAX_ICON_CHARS - len(head) + 1)) is None


# --- The stylesheet ----------------------------------------------------------------------------


def test_code_css_is_up_to_date():
    committed = (ROOT / "static" / "css" / "code.css").read_text()
    assert committed == code_css(), "regenerate static/css/code.css (see its first lines)"


def test_code_css_styles_the_classes_in_use_and_nothing_else():
    css = code_css()
    rules = [line.strip() for line in css.splitlines() if "{" in line and "@media" not in line]
    assert rules and all(rule.startswith(".highlight") for rule in rules)
    html = render_markdown("```python\ndef f(): return 'x'  # c\n```")
    for css_class in set(re.findall(r'<span class="([^"]+)"', html)) - {"w"}:
        assert f".highlight .{css_class} " in css, css_class
    assert css.count("@media") == 2 and "prefers-color-scheme: dark" in css
