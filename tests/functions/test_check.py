"""Saved code is loaded first in a throwaway process: hostile imports cost one child."""

import os
import re

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError

from functions.models import Function
from functions.services.functions import function_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def in_worker(settings):
    # The server's executor: the check runs in a throwaway sandboxed process.
    settings.FUNCTIONS_EXECUTOR = "process"
    settings.FUNCTIONS_CHECK_TIMEOUT = 3
    settings.FUNCTIONS_WORKER_MEMORY_MB = 1024


def test_the_server_checks_in_a_throwaway_process_and_no_variable_changes_that(monkeypatch):
    from importlib import reload

    import fnplatform.settings as project_settings

    monkeypatch.setenv("FNPLATFORM_EXECUTOR", "inline")
    assert reload(project_settings).FUNCTIONS_EXECUTOR == "process"
    assert django_settings.FUNCTIONS_CHECK_TIMEOUT > 0


def test_good_code_is_saved_with_its_report(in_worker, alice):
    source = (
        '"""\ntitle: Fine\n"""\nprint("noise at import")\n'
        'class Pipe:\n    def pipe(self, body):\n        return "ok"\n'
    )
    function = function_create(user=alice, id="fine", content=source)
    assert function.type == "pipe"
    assert function.current_revision.load_result["frontmatter"] == {"title": "Fine"}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param("while True:\n    pass\n", "LoadTimeout", id="endless-loop"),
        pytest.param("import os\nos._exit(1)\n", "exited with status 1", id="os-exit"),
        pytest.param("import ctypes\nctypes.string_at(0)\n", "SIGSEGV", id="segfault"),
        pytest.param("x = bytearray(8 * 1024**3)\n", "MemoryError", id="memory"),
        # Stopped by the time limit, or (as the sandbox uid, under RLIMIT_NPROC) at a fork.
        pytest.param(
            "import os\nwhile True:\n    os.fork()\n",
            "Load|BlockingIOError at line 3",
            id="fork-loop",
        ),
        pytest.param(
            "class Pipe:\n    def pipe(self, body)\n", "SyntaxError at line 2", id="syntax"
        ),
    ],
)
def test_hostile_code_at_import_is_refused_and_nothing_saved(in_worker, alice, source, message):
    with pytest.raises(ValidationError) as info:
        function_create(user=alice, id="hostile", content=source)
    assert re.search(message, info.value.messages[0])
    assert not Function.objects.exists()


def test_a_forged_result_line_is_refused_unless_it_is_a_well_formed_report(in_worker, alice):
    forged = (
        "import os, sys\n"
        'sys.stdout.write(\'\\n@@fnplatform-check@@ {"ok": true, "report": {"kind": 7}}\\n\')\n'
        "sys.stdout.flush()\nos._exit(0)\n"
    )
    with pytest.raises(ValidationError) as info:
        function_create(user=alice, id="forger", content=forged)
    assert "BadReport" in info.value.messages[0]
    assert not Function.objects.exists()


def test_printing_gigabytes_at_import_costs_the_server_nothing(in_worker, alice):
    from functions.workers.pool import process_usage

    flood = (
        "import sys\nline = 'x' * 65535 + '\\n'\nfor _ in range(8 * 1024):\n"
        "    sys.stdout.write(line)\n"
        "class Pipe:\n    def pipe(self, body):\n        return 'ok'\n"
    )
    before = process_usage(os.getpid())[0]
    function = function_create(user=alice, id="flood", content=flood)  # 512 MB printed
    assert function.type == "pipe"
    assert process_usage(os.getpid())[0] - before < 100


def test_a_plugin_may_configure_logging_at_import_in_its_own_process(in_worker, alice):
    from tests.conftest import read_plugin

    function = function_create(user=alice, id="logs", content=read_plugin("start_logger_filter"))
    assert function.current_revision.load_result["hooks"] == {"inlet": "sync"}
