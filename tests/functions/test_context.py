from pydantic import BaseModel

from functions.services.context import RESERVED_NAMES, CallContext, kwargs_for


class UV(BaseModel):
    n: int = 1


def ctx(**overrides) -> CallContext:
    fields = {"user": {"id": "1", "name": "bob", "role": "user", "email": "b@x"}, "chat_id": "c1"}
    return CallContext(**(fields | overrides))


def test_only_declared_reserved_names_are_passed():
    def hook(body, __user__, __chat_id__, __id__):
        pass

    kwargs = kwargs_for(hook, ctx(), id="fn")
    assert set(kwargs) == {"__user__", "__chat_id__", "__id__"}
    assert kwargs["__chat_id__"] == "c1" and kwargs["__id__"] == "fn"


def test_kwargs_takers_get_every_reserved_name():
    def hook(body, **kwargs):
        pass

    assert set(kwargs_for(hook, ctx(), id="fn")) == set(RESERVED_NAMES)


def test_methods_are_inspected_without_self():
    class Pipe:
        def pipe(self, body, __model__=None):
            pass

    assert kwargs_for(Pipe().pipe, ctx(model={"id": "m"}), id="p") == {"__model__": {"id": "m"}}


def test_user_is_a_fresh_copy_with_only_this_plugins_valves():
    def hook(__user__):
        pass

    context = ctx(user={"id": "1", "valves": "someone else's"})
    first = kwargs_for(hook, context, id="a", user_valves=UV(n=5))["__user__"]
    second = kwargs_for(hook, context, id="b")["__user__"]
    assert first["valves"].n == 5
    assert "valves" not in second
    first["id"] = "tampered"
    assert context.user["id"] == "1"
