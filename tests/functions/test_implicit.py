"""Implicit requirements: a module Open WebUI ships, imported undeclared, is installed for
the one function that needs it, pinned as Open WebUI pins it; staff see it and why."""

import httpx
import pytest
from django.core.exceptions import ValidationError

from functions.models import RequirementEnv
from functions.services.functions import function_create, function_set_active
from functions.services.implicit import (
    OPEN_WEBUI_PACKAGES,
    Implicit,
    function_requirements,
    implicit_requirements,
    imported_modules,
)
from tests.functions.test_environments import fresh, settled
from tests.support.wheels import build_wheel

PACKAGE = "fnplat-implicit-demo"
MODULE = "fnplat_implicit_demo"


def test_imports_anywhere_count_but_optional_and_type_checking_ones_do_not():
    source = (
        "import os, json\nimport torch.nn\nfrom transformers import AutoModel\n"
        "from google import genai\nfrom fastapi import Request\n"
        "try:\n    import chromadb\nexcept ImportError:\n    chromadb = None\n"
        "try:\n    import sklearn\nexcept (ModuleNotFoundError, OSError):\n    pass\n"
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import cv2\n"
        "class Pipe:\n    def pipe(self, body):\n        import faster_whisper\n"
        "        from . import sibling\n"
    )
    modules = imported_modules(source)
    assert {"os", "torch.nn", "transformers", "google.genai", "faster_whisper"} <= set(modules)
    assert not {"chromadb", "sklearn", "cv2", "sibling"} & set(modules)
    assert implicit_requirements(source) == [
        Implicit("torch.nn", "torch"),
        Implicit("transformers", OPEN_WEBUI_PACKAGES["transformers"]),
        Implicit("google.genai", OPEN_WEBUI_PACKAGES["google.genai"]),
        Implicit("faster_whisper", OPEN_WEBUI_PACKAGES["faster_whisper"]),
    ]


def test_what_plugins_already_see_or_declare_is_not_added():
    source = (
        '"""\nrequirements: Sentence_Transformers>=3, -\n"""\n'
        "import fastapi, aiohttp, pandas, pydantic, open_webui.utils.misc\n"
        "from utils.misc import get_last_user_message\n"  # legacy layout, aliased
        "import sentence_transformers\nimport transformers\n"
    )
    assert function_requirements(source) == [
        "Sentence_Transformers>=3",
        OPEN_WEBUI_PACKAGES["transformers"],
    ]


def test_the_site_table_adds_entries_and_turns_them_off(settings):
    settings.FUNCTIONS_IMPLICIT_REQUIREMENTS = {"mymod": "my-package==2.0", "transformers": ""}
    source = "import mymod.sub\nimport transformers\n"
    assert function_requirements(source) == ["my-package==2.0"]


@pytest.fixture
def implicit_wheel(tmp_path, monkeypatch, settings):
    folder = tmp_path / "wheelhouse"
    build_wheel(folder, PACKAGE, "1.0", "def shout(text):\n    return text.upper() + '!'\n")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    # Mapped the way Open WebUI's own modules are: module name to its pinned package.
    settings.FUNCTIONS_IMPLICIT_REQUIREMENTS = {MODULE: f"{PACKAGE}==1.0"}
    fresh(f"{PACKAGE}==1.0")
    return folder


def shouter(module: str) -> str:
    return (
        '"""\ntitle: Shouter\n"""\n'
        f"import {module}\n\n\n"
        "class Pipe:\n"
        "    def pipe(self, body):\n"
        f"        return {module}.shout(body['messages'][-1]['content'])\n"
    )


def test_an_implicit_requirement_is_installed_for_the_function_that_needs_it(
    live, alice, api_key, implicit_wheel
):
    function = function_create(user=alice, id="shouter", content=shouter(MODULE))
    plain = function_create(user=alice, id="plain_echo", content=_echo())
    assert plain.environment_id is None
    assert function.environment_id and function.current_revision.load_result["pending"]

    env = settled(function.environment_id)
    assert env.status == RequirementEnv.Status.READY, env.log
    assert env.requirements == [f"{PACKAGE}==1.0"]
    assert f"Successfully installed {PACKAGE}-1.0" in env.log
    function.refresh_from_db()
    report = function.current_revision.load_result
    assert function.load_error == "" and not report.get("pending")
    assert report["implicit_requirements"] == [{"module": MODULE, "requirement": f"{PACKAGE}==1.0"}]
    assert report["requirements"] == [f"{PACKAGE}==1.0"]
    note = f"Installs {PACKAGE}==1.0 for `import {MODULE}`"
    assert any(note in warning for warning in report["warnings"])
    function_set_active(user=alice, function=function, active=True)

    body = {"model": "shouter", "messages": [{"role": "user", "content": "quiet"}]}
    headers = {"Authorization": f"Bearer {api_key}"}
    answer = httpx.post(f"{live.url}/api/chat/completions", json=body, headers=headers, timeout=60)
    assert answer.json()["choices"][0]["message"]["content"] == "QUIET!"


def test_staff_see_the_implicit_requirement_on_the_admin_page(
    transactional_db, alice, alice_client, implicit_wheel
):
    function = function_create(user=alice, id="shouter_admin", content=shouter(MODULE))
    settled(function.environment_id)
    page = alice_client.get(f"/admin/functions/function/{function.id}/change/").content.decode()
    assert f"Installs {PACKAGE}==1.0 for" in page


def test_a_module_nobody_provides_fails_at_save_saying_how_to_declare_it(db, alice):
    with pytest.raises(ValidationError) as info:
        function_create(user=alice, id="nobody", content=shouter("fnplat_nobody_has_this"))
    message = info.value.messages[0]
    assert "No module named 'fnplat_nobody_has_this'" in message
    assert "requirements: fnplat_nobody_has_this" in message


def test_a_missing_submodule_is_not_given_a_wrong_package_name(db, alice):
    with pytest.raises(ValidationError) as info:
        function_create(user=alice, id="nobody2", content=shouter("json.fnplat_nobody"))
    message = info.value.messages[0]
    assert "No module named 'json.fnplat_nobody'" in message
    assert "requirements:" not in message  # `requirements: json` would be wrong


def _echo() -> str:
    return "class Pipe:\n    def pipe(self, body):\n        return 'echo'\n"


def test_modules_earlier_releases_shipped_are_mapped_too_and_say_so():
    (found,) = implicit_requirements("import google.generativeai as genai\n")
    assert found == Implicit("google.generativeai", "google-generativeai")
    assert "earlier Open WebUI releases shipped it" in found.note()


def test_bs4_as_a_requirement_is_met_by_beautifulsoup4():
    from functions.services.environments import needs_environment

    assert not needs_environment(["bs4"])
    assert needs_environment(["bs4==0.0.2"])  # a pin names the shim itself
