"""A pytest plugin loaded before Django: the suite's data dir is a temporary one.

Tests never write into the user's ./var (its database, keys, plugin sources, logs):
the whole run gets a fresh data dir, removed at the end, whatever FNPLATFORM_DATA_DIR
the shell or the Makefile set.
"""

import os
import shutil
import tempfile

DATA_DIR = tempfile.mkdtemp(prefix="fnplatform-tests-")
os.environ["FNPLATFORM_DATA_DIR"] = DATA_DIR


def pytest_unconfigure(config) -> None:
    shutil.rmtree(DATA_DIR, ignore_errors=True)
