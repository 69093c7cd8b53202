"""Frontmatter and requirements parsing for plugin sources.

Open WebUI's rule (utils/plugin.py `extract_frontmatter`): the first line must be
exactly `\"\"\"`; each following line up to the one containing the closing quotes
is matched against `^\\s*([a-z_]+):\\s*(.*)\\s*$` (case-insensitive) and stored as
a trimmed string. Everything that rule accepts we parse identically.

Tolerance for what community files really contain, where upstream silently
returns nothing or drops a key:
- a UTF-8 byte-order mark, CRLF line endings;
- blank lines, a shebang, an encoding line or other `#` comments before the docstring;
- `'''` quotes and an `r`/`u` string prefix;
- text on the opening line (`\"\"\"title: x`) and on the closing line (`license: MIT\"\"\"`);
- indented continuation lines of a value (YAML-style folded text), joined with a space,
  except for `requirements`: what gets installed is only what Open WebUI would install,
  never prose that follows the line (an indented note after `important note:`).
"""

import re

from packaging.requirements import InvalidRequirement, Requirement

_KEY_LINE = re.compile(r"^\s*([a-z_]+):\s*(.*)\s*$", re.IGNORECASE)
_OPENING = re.compile(r"^[rRuU]?(\"\"\"|''')(.*)$")
_SPECIFIER_START = ("<", ">", "=", "!", "~")
# Entries authors write to mean "no requirements"; pip would look for a package so named.
_PLACEHOLDERS = frozenset({"none", "null", "nil", "no", "nothing", "n/a", "na", "-", "tbd"})


def _docstring_lines(source: str) -> tuple[list[str], str] | None:
    """Return the lines after the opening quotes (first line's remainder first), and the quote."""
    lines = source.lstrip("\ufeff").splitlines()
    index = 0
    while index < len(lines) and (
        not lines[index].strip() or lines[index].lstrip().startswith("#")
    ):
        index += 1
    if index >= len(lines):
        return None
    match = _OPENING.match(lines[index].strip())
    if not match:
        return None
    quote, rest = match.groups()
    return [rest, *lines[index + 1 :]], quote


def parse_frontmatter(source: str) -> dict[str, str]:
    """Return the frontmatter keys of a plugin source as a dict of strings."""
    found = _docstring_lines(source)
    if found is None:
        return {}
    lines, quote = found
    frontmatter: dict[str, str] = {}
    last_key: str | None = None
    for line in lines:
        closing = quote in line
        text = line.split(quote, 1)[0] if closing else line
        match = _KEY_LINE.match(text)
        if match:
            key, value = match.groups()
            last_key = key.strip()
            frontmatter[last_key] = value.strip()
        elif last_key and last_key != "requirements" and text[:1].isspace() and text.strip():
            frontmatter[last_key] = f"{frontmatter[last_key]} {text.strip()}".strip()
        elif not text.strip():
            last_key = None
        if closing:
            break
    return frontmatter


def _split_top_level(value: str) -> list[str]:
    """Split on commas that are outside brackets (extras like pkg[a,b])."""
    parts, depth, current = [], 0, []
    for char in value:
        if char in "[(":
            depth += 1
        elif char in "])":
            depth = max(0, depth - 1)
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def _merge_specifier_pieces(pieces: list[str]) -> list[str]:
    """Glue `<2` back onto `pkg>=1` when a comma separated two specifiers of one package."""
    merged: list[str] = []
    for piece in pieces:
        if merged and piece.startswith(_SPECIFIER_START):
            merged[-1] = f"{merged[-1]},{piece}"
        else:
            merged.append(piece)
    return merged


def parse_requirements(value: str) -> list[str]:
    """Return the requirement strings of a frontmatter `requirements` value.

    Raise ValueError naming the entry when one is not a valid requirement.
    """
    valid, invalid = split_requirements(value)
    if invalid:
        raise ValueError(f"Invalid requirement {invalid[0]!r} in the frontmatter")
    return valid


def split_requirements(value: str) -> tuple[list[str], list[str]]:
    """Return (valid requirements, entries that are not requirements) of a frontmatter
    `requirements` value, the way Open WebUI reads it: entries are separated by commas,
    and a bad entry (`-`, `None`, prose, a path, a URL, `requests bs4` without its comma)
    does not refuse the file, it is only not installed. Prose is never split into
    words: each word would name some PyPI project, somebody else's code."""
    valid: list[str] = []
    invalid: list[str] = []
    for entry in _merge_specifier_pieces(_split_top_level(value or "")):
        good = entry.lower() not in _PLACEHOLDERS and _valid(entry)
        (valid if good else invalid).append(entry)
    return valid, invalid


def _valid(text: str) -> bool:
    """A requirement pip may install from the configured index: direct references
    (`pkg @ https://...`, `file:`, `git+`) are refused, because pip would run the build
    step of whatever that URL serves; name the package and set PIP_INDEX_URL or
    PIP_FIND_LINKS instead."""
    try:
        return Requirement(text).url is None
    except InvalidRequirement:
        return False
