"""The permission-matrix personas: who asks, and the cases a matrix table makes."""

import pytest

# Staff with every permission, staff who may only view, staff with none, an end user.
PERSONAS = ["superuser", "viewer", "bare_staff", "user"]


def matrix_cases(matrix: list[tuple]) -> list:
    """(method, path, status per persona...) rows as one pytest case per persona."""
    return [
        pytest.param(method, path, persona, expected[i], id=f"{persona}-{method}-{path}")
        for method, path, *expected in matrix
        for i, persona in enumerate(PERSONAS)
    ]
