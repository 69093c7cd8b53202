"""Plugin signatures read without evaluating a single annotation.

Community files annotate hooks with names they never import
(`-> Union[dict, "StreamingResponse"]`, or anything under
`from __future__ import annotations`). Open WebUI only reads parameter names, and
so do we: from Python 3.14 `inspect.signature` evaluates annotations unless told
not to, so every reader of a plugin's signature goes through here and asks for
them as strings.
"""

import inspect
from collections.abc import Callable, Mapping

try:  # Python 3.14+: annotations are evaluated lazily, on request
    from annotationlib import Format

    _OPTIONS: dict = {"annotation_format": Format.STRING}
except ImportError:  # before 3.14 a signature never evaluates string annotations
    _OPTIONS = {}


def signature(func: Callable) -> inspect.Signature | None:
    """The signature of a plugin's callable, or None when it has none that can be read.
    Annotations are never evaluated (they are strings, if anything)."""
    try:
        return inspect.signature(func, **_OPTIONS)
    except (TypeError, ValueError):
        return None


def parameters(func: Callable) -> Mapping[str, inspect.Parameter] | None:
    """The parameters of a plugin's callable, or None when it has no readable signature."""
    found = signature(func)
    return found.parameters if found is not None else None


def accepted_names(func: Callable) -> tuple[frozenset[str], bool]:
    """The parameter names a callable declares, and whether it takes **kwargs."""
    params = parameters(func)
    if params is None:
        return frozenset(), False
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    return frozenset(params), takes_kwargs
