import subprocess
import sys
import threading
from pathlib import Path

import pytest

from functions.models import Function
from functions.services import registry
from functions.services.functions import function_update
from functions.services.loader import SourceError

COUNTING = """
import itertools
LOADS = itertools.count()
N = next(LOADS)

class Pipe:
    def pipe(self, body):
        return "{answer}"
"""


@pytest.fixture(autouse=True)
def _empty_registry():
    registry.clear()
    yield
    registry.clear()


def test_same_source_is_loaded_once(tmp_path):
    source = COUNTING.format(answer="one")
    first = registry.get_plugin_for_source("counter", source)
    second = registry.get_plugin_for_source("counter", source)
    assert first is second


def test_new_source_replaces_and_closes_the_old_version():
    old = registry.get_plugin_for_source("counter", COUNTING.format(answer="one"))
    new = registry.get_plugin_for_source("counter", COUNTING.format(answer="two"))
    assert new is not old
    assert old.closed and not Path(old.path).exists()
    assert new.instance.pipe({}) == "two"
    assert registry.loaded_versions("counter") == [new.sha256]


def test_concurrent_first_use_loads_once():
    source = COUNTING.format(answer="race")
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(registry.get_plugin_for_source("race", source))
        )
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(r) for r in results}) == 1


def test_invalidate_closes_every_version():
    loaded = registry.get_plugin_for_source("gone", COUNTING.format(answer="x"))
    registry.invalidate("gone")
    assert loaded.closed
    assert registry.loaded_versions("gone") == []


def test_broken_source_raises_and_is_not_cached():
    with pytest.raises(SourceError):
        registry.get_plugin_for_source("broken", "def (")
    assert registry.loaded_versions("broken") == []


@pytest.mark.django_db
def test_edit_saved_elsewhere_is_picked_up_without_invalidation(make_function, alice):
    function = make_function("echo", id="edited", content=COUNTING.format(answer="before"))
    assert registry.get_plugin(function).instance.pipe({}) == "before"
    # Another process edits the row; this process only sees the new content.
    Function.objects.filter(pk="edited").update(content=COUNTING.format(answer="after"))
    fresh = Function.objects.get(pk="edited")
    assert registry.get_plugin(fresh).instance.pipe({}) == "after"
    function_update(user=alice, function=fresh, content=COUNTING.format(answer="third"))
    assert registry.get_plugin(Function.objects.get(pk="edited")).instance.pipe({}) == "third"


def test_each_process_keys_by_content(tmp_path):
    """Two interpreters given the same id and source report the same cache key."""
    script = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='fnplatform.settings'; "
        "django.setup(); from functions.services import registry; "
        f"print(registry.get_plugin_for_source('p', {COUNTING.format(answer='x')!r}).sha256)"
    )
    root = Path(__file__).resolve().parents[2]
    env = {"FNPLATFORM_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for _ in range(2)
    }
    here = registry.get_plugin_for_source("p", COUNTING.format(answer="x")).sha256
    assert outputs == {here}
