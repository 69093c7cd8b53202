import pytest

from functions.services.frontmatter import (
    parse_frontmatter,
    parse_requirements,
    split_requirements,
)

Q = '"""'


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            f"{Q}\ntitle: Example\nauthor: me\nversion: 0.1.0\n{Q}\n",
            {"title": "Example", "author": "me", "version": "0.1.0"},
            id="plain",
        ),
        pytest.param(
            f"{Q}\n  title:   Spaced value   \n{Q}\n", {"title": "Spaced value"}, id="trimmed"
        ),
        pytest.param(
            f"{Q}\nTitle: Upper\nAUTHOR_URL: https://x.example/a:b\n{Q}\n",
            {"Title": "Upper", "AUTHOR_URL": "https://x.example/a:b"},
            id="case-kept-and-colon-in-value",
        ),
        pytest.param(
            f"{Q}\ntitle: A\nimportant note: ignored\nfunding-url: ignored\nv2: ignored\n{Q}\n",
            {"title": "A"},
            id="keys-with-space-hyphen-or-digit-ignored",
        ),
        pytest.param(
            f"{Q}\ntitle: A\nplain prose line\n\nMore prose.\n{Q}\n",
            {"title": "A"},
            id="prose-ignored",
        ),
        pytest.param(
            f"{Q}\ntitle: A\n{Q}\n{Q}\ntitle: B\n{Q}\n", {"title": "A"}, id="only-first-docstring"
        ),
        pytest.param(f"{Q}\ntitle: A\ntitle: B\n{Q}\n", {"title": "B"}, id="last-duplicate-wins"),
        pytest.param(f"{Q}\ntitle:\n{Q}\n", {"title": ""}, id="empty-value"),
        pytest.param("import os\n", {}, id="no-docstring"),
        pytest.param("", {}, id="empty-source"),
        pytest.param(f"x = 1\n{Q}\ntitle: A\n{Q}\n", {}, id="code-before-docstring"),
    ],
)
def test_open_webui_rules(source, expected):
    assert parse_frontmatter(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("\ufeff" + f"{Q}\ntitle: Bom\n{Q}\n", {"title": "Bom"}, id="bom"),
        pytest.param(
            f"{Q}\r\ntitle: Crlf\r\nversion: 1\r\n{Q}\r\n",
            {"title": "Crlf", "version": "1"},
            id="crlf",
        ),
        pytest.param(
            f"#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n\n{Q}\ntitle: After\n{Q}\n",
            {"title": "After"},
            id="comments-before",
        ),
        pytest.param("'''\ntitle: Single\n'''\n", {"title": "Single"}, id="single-quotes"),
        pytest.param(f"r{Q}\ntitle: Raw\n{Q}\n", {"title": "Raw"}, id="raw-prefix"),
        pytest.param(
            f"{Q}title: Same line\nauthor: x\n{Q}\n",
            {"title": "Same line", "author": "x"},
            id="text-on-opening-line",
        ),
        pytest.param(
            f"{Q}\ntitle: A\nlicense: MIT{Q}\n",
            {"title": "A", "license": "MIT"},
            id="text-on-closing-line",
        ),
        pytest.param(
            f"{Q}\ndescription: A long\n  description that goes on\nauthor: b\n{Q}\n",
            {"description": "A long description that goes on", "author": "b"},
            id="indented-continuation",
        ),
    ],
)
def test_tolerates_what_community_files_contain(source, expected):
    assert parse_frontmatter(source) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("requests", ["requests"], id="one"),
        pytest.param("requests, httpx", ["requests", "httpx"], id="two"),
        pytest.param("pkg>=1.0,<2, other", ["pkg>=1.0,<2", "other"], id="range-survives"),
        pytest.param("a>=1, <2,!=1.5", ["a>=1,<2,!=1.5"], id="range-with-spaces"),
        pytest.param("foo[x,y]>=2", ["foo[x,y]>=2"], id="extras-keep-commas"),
        pytest.param(
            'bar; python_version >= "3.8", baz==1',
            ['bar; python_version >= "3.8"', "baz==1"],
            id="markers",
        ),
        pytest.param("", [], id="empty"),
        pytest.param(" , ,", [], id="only-commas"),
    ],
)
def test_parse_requirements(value, expected):
    assert parse_requirements(value) == expected


def test_invalid_requirement_names_the_entry():
    with pytest.raises(ValueError, match="'@@bad'"):
        parse_requirements("requests, @@bad")


@pytest.mark.parametrize(
    ("value", "valid", "ignored"),
    [
        pytest.param("requests beautifulsoup4", [], ["requests beautifulsoup4"], id="no-comma"),
        pytest.param(
            "[List of dependencies, e.g., jinja2, markdown]",
            [],
            ["[List of dependencies, e.g., jinja2, markdown]"],
            id="template-placeholder",
        ),
        pytest.param("None", [], ["None"], id="none"),
        pytest.param("n/a", [], ["n/a"], id="n-a"),
        pytest.param("-, requests", ["requests"], ["-"], id="dash"),
        pytest.param(
            "innocent @ https://attacker.invalid/x.tar.gz, git+https://x.invalid/r.git, httpx",
            ["httpx"],
            ["innocent @ https://attacker.invalid/x.tar.gz", "git+https://x.invalid/r.git"],
            id="direct-references-are-never-installed",
        ),
        pytest.param(
            "uses the stdlib only, httpx",
            ["httpx"],
            ["uses the stdlib only"],
            id="prose-is-never-split-into-package-names",
        ),
    ],
)
def test_entries_that_are_not_requirements_are_kept_apart(value, valid, ignored):
    assert split_requirements(value) == (valid, ignored)


def test_prose_after_the_requirements_line_is_not_a_requirement():
    source = (
        f"{Q}\ntitle: Resume\nrequirements: aiofiles\nimportant note:\n"
        "  put your API key in the valves, and either you or the admin\n"
        f"  must set it.\n{Q}\n"
    )
    assert parse_frontmatter(source)["requirements"] == "aiofiles"
