"""Wrong-typed request bodies: every JSON type put into every field of a valid body.

`typed_cases(base, fields)` yields pytest params (body, must_refuse): each field of
`base` (a dotted path; "messages.0.role" reaches into lists) gets a value of each
JSON type. `must_refuse` is True when that type is not among the field's accepted
ones, so the API must answer 4xx; either way it must never answer 5xx.
"""

import copy
from collections.abc import Iterator
from typing import Any

import pytest

# (name, JSON type, value)
POOL: list[tuple[str, str, Any]] = [
    ("null", "null", None),
    ("true", "bool", True),
    ("int", "int", 7),
    ("huge_int", "int", 10**20),
    ("float", "float", 1.5),
    ("string", "string", "x"),
    ("empty_string", "string", ""),
    ("list", "array", [1]),
    ("empty_list", "array", []),
    ("object", "object", {"a": [1]}),
    ("empty_object", "object", {}),
]


def with_value(base: dict, path: str, value: Any) -> dict:
    """Return a deep copy of base with the dotted path set to value."""
    body = copy.deepcopy(base)
    *parents, last = path.split(".")
    target: Any = body
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return body


def typed_cases(base: dict, fields: dict[str, set[str]], prefix: str = "") -> Iterator:
    for path, accepted in fields.items():
        for name, json_type, value in POOL:
            yield pytest.param(
                with_value(base, path, value),
                json_type not in accepted,
                id=f"{prefix}{path}={name}",
            )


def assert_refused_or_accepted(response, must_refuse: bool) -> None:
    """Never a 5xx; a 4xx when the value had a type the field does not take."""
    assert response.status_code < 500, response.content
    if must_refuse:
        assert 400 <= response.status_code < 500, response.content
