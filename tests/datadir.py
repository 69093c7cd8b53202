"""A pytest plugin loaded before Django: the suite's data dir is a temporary one.

Tests never write into the user's ./var (its database, keys, plugin sources, logs):
the whole run gets a fresh data dir, removed at the end, whatever FNPLATFORM_DATA_DIR
the shell or the Makefile set; and they leave /tmp as they found it.
"""

import atexit
import os
import shutil
import tempfile

DATA_DIR = tempfile.mkdtemp(prefix="fnplatform-tests-")
os.environ["FNPLATFORM_DATA_DIR"] = DATA_DIR
# Where the loader writes sources loaded without a source dir (unit tests do): it is
# removed at the end too, unless it was there before the run.
LOADER_DIR = os.path.join(tempfile.gettempdir(), "fnplatform-plugins")
LOADER_DIR_EXISTED = os.path.isdir(LOADER_DIR)


def _remove() -> None:
    shutil.rmtree(DATA_DIR, ignore_errors=True)
    if not LOADER_DIR_EXISTED:
        shutil.rmtree(LOADER_DIR, ignore_errors=True)


def pytest_unconfigure(config) -> None:
    _remove()


# Also when pytest stops before configuring its plugins (a usage error, say).
atexit.register(_remove)
