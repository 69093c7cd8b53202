"""functions.management.commands.install_examples: the bundled examples, ready to use."""

import pytest
from django.core.management import call_command

from functions.models import Function
from functions.services.functions import function_update

pytestmark = pytest.mark.django_db

EXAMPLES = {
    "example_pipe": "pipe",
    "example_manifold": "pipe",
    "example_filter": "filter",
    "example_toggle_filter": "filter",
    "example_action": "action",
}


def test_examples_install_active_with_filters_and_the_action_global(alice):
    call_command("install_examples")
    installed = {f.id: f for f in Function.objects.all()}
    assert {id: f.type for id, f in installed.items()} == EXAMPLES
    assert all(f.is_active for f in installed.values())
    assert {id for id, f in installed.items() if f.is_global} == {
        "example_filter",
        "example_toggle_filter",
        "example_action",
    }


def test_installing_again_keeps_an_edited_example(alice):
    call_command("install_examples")
    pipe = Function.objects.get(pk="example_pipe")
    edited = pipe.content + "\n# mine\n"
    function_update(user=alice, function=pipe, content=edited)
    call_command("install_examples")
    assert Function.objects.get(pk="example_pipe").content == edited
