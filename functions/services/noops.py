"""Filter hooks that provably do nothing, found at save time so the server never calls them.

Community filters are full of stubs (`def outlet(self, body): return body`), and each
call of one costs a worker round trip per request, or per streamed chunk for `stream`.
The save-time check (functions.services.loader) lists those it can prove to be no-ops
in the load report's `noop_hooks`; the runtime skips them (PluginCall.must_call).

A hook is a no-op only when all of this holds for the loaded instance:
- the bound method found on it is a plain function defined under that name in the
  plugin's class (or a base class), not replaced on the instance, not wrapped, not
  a lambda, builtin or partial, not a generator or async generator, with no
  attributes of its own (`__wrapped__` or `__signature__` would change how the
  worker reads its parameters);
- the worker's own steps around every call (copy.copy of the instance, getattr of
  the hook, setting `valves` on the copy) run none of the plugin's code: the class's
  metaclass is `type`, no reducer is registered for it with copyreg, and it defines
  none of the dunders those steps use, nor a `valves` descriptor;
- the worker's call binds (plugin_contract.hook_arguments, context.kwargs_for, as
  the worker does them): the data argument lands in one named parameter;
- its bytecode, RESUME and the like aside, only returns that parameter, or (inlet
  and outlet only: their None means "body unchanged", while a stream hook's None
  drops the chunk) returns None. Docstrings and `pass` add no bytecode, and
  default values are evaluated when the method is defined, not when it is called.
  An async def qualifies too: it awaits nothing.

Anything else is called, even when harmless (`body = body; return body`): this is
a proof, not a guess. The runtime still calls a no-op on the rare data its answer
would differ from (an empty stream event, which it drops; see PluginCall.must_call).
What skipping leaves out is only what surrounds the call: the worker starting and
loading the code, the plugin's Valves validating the stored valves (their
validators, if any, included), the data's trip over the wire and back (JSON data
comes back equal), and the failures that belong to carrying a call (timeouts,
crashes, limits, stored valves that no longer fit). The proof is about the code as
loaded: a plugin that later rebinds its own methods is beyond any save-time check.
"""

import copyreg
import dis
import inspect
import types
from typing import Any

from functions.services.context import CallContext, kwargs_for
from functions.services.plugin_contract import hook_arguments
from functions.services.signatures import signature

# The filter hooks, and the name each is handed its data by (functions.services.runtime).
DATA_NAMES = {"inlet": "body", "stream": "event", "outlet": "body"}
# Where None means "unchanged": apply_inlet and apply_outlet keep the body they had.
NONE_KEEPS = frozenset({"inlet", "outlet"})

# What the worker's per-call steps use on the instance and its class; a class that
# defines any of them runs its own code before the hook does.
_CALL_DUNDERS = (
    "__getattribute__",
    "__getattr__",
    "__setattr__",
    "__copy__",
    "__reduce__",
    "__reduce_ex__",
    "__getstate__",
    "__setstate__",
    "__new__",
)
# Instructions that do nothing a caller can see.
_IGNORED = frozenset({"RESUME", "NOP", "CACHE", "EXTENDED_ARG"})
_LOAD_LOCAL = frozenset({"LOAD_FAST", "LOAD_FAST_BORROW"})  # LOAD_FAST_BORROW: 3.14+
_RETURNS = frozenset({"RETURN_VALUE", "RETURN_CONST"})  # RETURN_CONST: 3.12 and 3.13
_NOT_PLAIN = inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR | inspect.CO_ITERABLE_COROUTINE


def noop_hooks(instance: Any, hooks: dict[str, str]) -> list[str]:
    """The filter hooks among `hooks` that provably have no effect when called."""
    return [hook for hook in hooks if hook in DATA_NAMES and is_noop(instance, hook)]


def is_noop(instance: Any, hook: str) -> bool:
    """Whether calling this filter hook, as the worker does, provably has no effect."""
    func = _plain_method(instance, hook)
    returned = _returned(func.__code__) if func is not None else None
    if returned is None:
        return False
    try:
        receiver = _data_parameter(getattr(instance, hook), DATA_NAMES[hook])
    except TypeError:
        return False  # the call itself would fail
    kind, value = returned
    if kind == "const":
        return hook in NONE_KEEPS
    return receiver is not None and value == receiver


def _plain_method(instance: Any, hook: str) -> types.FunctionType | None:
    """The plain function the worker's getattr binds for this hook, if nothing else runs
    on the way to it; else None."""
    cls = type(instance)
    if type(cls) is not type or cls in copyreg.dispatch_table:
        return None  # a metaclass or a registered reducer would run on copy or lookup
    state = getattr(instance, "__dict__", None)
    if not isinstance(state, dict) or hook in state:
        return None  # slots only (setting valves may fail), or replaced in __init__
    own = cls.__mro__[:-1]  # object's own dunders are the plain ones
    if any(name in klass.__dict__ for klass in own for name in _CALL_DUNDERS):
        return None
    if any(hasattr(klass.__dict__.get("valves"), "__set__") for klass in own):
        return None  # setting this call's valves would run a descriptor
    owner = next((klass for klass in own if hook in klass.__dict__), None)
    func = owner.__dict__[hook] if owner is not None else None
    if type(func) is not types.FunctionType or func.__dict__:
        return None
    if func.__qualname__ != f"{owner.__qualname__}.{hook}":
        return None  # assigned, not defined here: a lambda, another method, a decorator's
    bound = getattr(instance, hook, None)
    if not isinstance(bound, types.MethodType) or bound.__func__ is not func:
        return None
    return func


def _data_parameter(bound: Any, data_name: str) -> str | None:
    """The parameter the worker's call puts the data in, or None if none holds it as it
    is (it went into *args or **kwargs). Raise TypeError if the call would not bind."""
    found = signature(bound)
    if found is None:
        raise TypeError("no readable signature")
    data = object()
    extra = kwargs_for(bound, CallContext(user={}), id="")
    args, kwargs = hook_arguments(bound, data_name, data, extra)
    arguments = found.bind(*args, **kwargs).arguments
    return next((name for name, value in arguments.items() if value is data), None)


def _returned(code: types.CodeType) -> tuple[str, Any] | None:
    """What a plain function or coroutine code only returns, if that is all it does."""
    if code.co_flags & _NOT_PLAIN:
        return None
    ops = [(i.opname, i.argval) for i in dis.get_instructions(code)]
    return trivial_return(ops, coroutine=bool(code.co_flags & inspect.CO_COROUTINE))


def trivial_return(ops: list[tuple[str, Any]], *, coroutine: bool) -> tuple[str, Any] | None:
    """("local", name) when the instructions (opname, argval) only return that local,
    ("const", None) when they only return None; else None."""
    ops = [(op, arg) for op, arg in ops if op not in _IGNORED]
    if coroutine:
        # An async def first makes its coroutine and drops the value it is started with.
        if [op for op, _ in ops[:2]] != ["RETURN_GENERATOR", "POP_TOP"]:
            return None
        ops = ops[2:]
    # Straight-line code ends at its first return; what follows (a coroutine's
    # StopIteration guard) is reached only through an exception raised before it.
    end = next((n for n, (op, _) in enumerate(ops) if op in _RETURNS), None)
    if end is None:
        return None
    ops = ops[: end + 1]
    names = [op for op, _ in ops]
    if names == ["RETURN_CONST"] and ops[0][1] is None:
        return "const", None
    if names == ["LOAD_CONST", "RETURN_VALUE"] and ops[0][1] is None:
        return "const", None
    if len(names) == 2 and names[0] in _LOAD_LOCAL and names[1] == "RETURN_VALUE":
        return "local", ops[0][1]
    return None
