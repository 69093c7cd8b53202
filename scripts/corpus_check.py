"""Create every plugin file of a folder the way `POST /api/v1/functions/create` does,
and say which ones fnplatform accepts and why it refuses the rest.

    PIP_NO_INDEX=1 .venv/bin/python scripts/corpus_check.py FOLDER [--json OUT] [--keep]

Each `*.py` under FOLDER (recursively) is created through
functions.services.functions.function_create by a staff user, in a throwaway data
dir (FNPLATFORM_DATA_DIR=$(mktemp -d), SQLite, migrated), with the id Open WebUI
derives from a file name (lower case, non-alphanumerics to `_`; a clash gets `_2`).
Plugin code runs only where function_create runs it: in sandboxed check processes.
This script reads sources (ast) only to name their kind; it never imports them.

Requirement installs (declared, or implicit: Open WebUI's heavy packages) run with
PIP_NO_INDEX=1 unless the environment sets PIP_NO_INDEX, so nothing is downloaded:
such a file is created "pending", and the script waits for its install (which then
fails unless the requirement is already at hand) before the next file, so the corpus
runs serially. Output: one line per file, then totals per kind and the refusal causes
grouped, with examples. Toolkit files (class Tools, no Pipe/Filter/Action) are
counted apart: fnplatform does not host toolkits yet.
"""

import argparse
import ast
import collections
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = [("Pipe", "pipe"), ("Filter", "filter"), ("Action", "action"), ("Tools", "tools")]
KINDS = ["pipe", "filter", "action", "tools", "unparsable", "none"]


def static_kind(source: str) -> str:
    """The kind Open WebUI would see: Pipe, then Filter, then Action; Tools apart."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return "unparsable"
    names = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    return next((kind for name, kind in ORDER if name in names), "none")


def owui_id(path: Path, taken: set[str]) -> str:
    """Open WebUI's id from a file name: lower case, non-alphanumerics to `_`."""
    base = re.sub(r"[^a-z0-9]", "_", path.stem.lower())
    function_id, number = base, 1
    while function_id in taken:
        number += 1
        function_id = f"{base}_{number}"
    taken.add(function_id)
    return function_id


def cause_of(detail: dict) -> str:
    """A refusal's group: its error type, and for import errors the module or name."""
    kind, message = detail.get("type") or "Error", (detail.get("message") or "").strip()
    first = message.splitlines()[0] if message else ""
    if kind in ("ModuleNotFoundError", "ImportError"):
        module = re.match(r"No module named '([^']+)'", first)
        if module:
            return f"No module named '{module.group(1)}'"
        name = re.match(r"cannot import name '([^']+)' from '([^']+)'", first)
        if name:
            return f"cannot import name '{name.group(1)}' from '{name.group(2)}'"
    if kind in ("MissingHook", "NoPluginClass", "SyntaxError", "IndentationError"):
        return f"{kind}: {first}" if kind == "MissingHook" else kind
    if kind == "RequirementsNotInstalled":
        return kind
    # Others (NameError, AttributeError, ...): the type and its message without paths.
    return f"{kind}: {re.sub(r'/[^ ]+', '<path>', first)[:120]}"


def setup_django(data_dir: str) -> None:
    os.environ["FNPLATFORM_DATA_DIR"] = data_dir
    os.environ.pop("DATABASE_URL", None)  # SQLite in the throwaway data dir
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("PIP_NO_INDEX", "1")
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fnplatform.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def check_one(user, path: Path, function_id: str) -> dict:
    from django.core.exceptions import ValidationError

    from functions.models import Function, RequirementEnv
    from functions.services import environments
    from functions.services.functions import function_create
    from functions.services.loader import SourceError

    result = {"id": function_id}
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return result | refused({"type": "UnicodeDecodeError", "message": str(exc)})
    result["kind"] = static_kind(content)
    started = time.monotonic()
    try:
        function = function_create(user=user, id=function_id, content=content)
    except SourceError as exc:
        return result | refused(exc.detail, exc.messages[0])
    except ValidationError as exc:  # a field error (the id, say): not the code's fault
        message = "; ".join(exc.messages)
        return result | refused({"type": "ValidationError", "message": message}, message)
    except Exception as exc:  # fnplatform itself failed: worth its own line
        message = f"{type(exc).__name__}: {exc}"
        return result | refused({"type": f"ServerError {type(exc).__name__}", "message": message})
    finally:
        result["seconds"] = round(time.monotonic() - started, 2)
    report = function.current_revision.load_result
    result |= {
        "type": function.type,
        "warnings": report.get("warnings", []),
        "requirements": report.get("requirements", []),
        "implicit": [i["requirement"] for i in report.get("implicit_requirements", [])],
    }
    if not report.get("pending"):
        return result | {"status": "accepted"}
    # Wait for its install (the one installer thread runs jobs in order), then see how
    # the recheck went: the corpus runs one file at a time.
    environments._installer.submit(lambda: None).result()
    function = Function.objects.get(pk=function.pk)
    env = function.environment
    result["status"] = "pending"
    result["install"] = env.status if env else "none"
    result["unmet"] = unmet(result["requirements"])
    if env is not None and env.status == RequirementEnv.Status.FAILED:
        lines = [line for line in env.log.strip().splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR:")]
        result["install_error"] = (errors or lines or ["no output"])[0][:300]
    elif function.load_error:
        result["after_install"] = function.load_error.splitlines()[0]
    return result


def unmet(requirements: list[str]) -> list[str]:
    """The requirements the plugin environment does not meet: what the install is for."""
    from packaging.requirements import Requirement

    from functions.services import plugin_env
    from functions.services.loader import requirement_satisfied

    path = plugin_env.paths()
    return [text for text in requirements if not requirement_satisfied(Requirement(text), path)]


def refused(detail: dict, first_line: str | None = None) -> dict:
    line = first_line or f"{detail.get('type')}: {detail.get('message')}"
    return {
        "status": "refused",
        "error": line.splitlines()[0] if line else "",
        "detail": detail,
        "cause": cause_of(detail),
    }


def describe(name: str, result: dict) -> str:
    kind = result.get("kind", "?")
    status = result["status"]
    if status == "refused":
        return f"refused   {kind:<10} {name}: {result['error']}"
    if status == "pending":
        if result.get("install_error"):
            tail = f"install failed: {result['install_error']}"
        elif result.get("after_install"):
            tail = f"installed, then refused: {result['after_install']}"
        else:
            tail = f"install {result['install']}"
        needs = ", ".join(result["requirements"])
        missing = ", ".join(result["unmet"])
        return f"pending   {kind:<10} {name}: requirements {needs}; unmet {missing} ({tail})"
    implicit = f" (implicit: {', '.join(result['implicit'])})" if result.get("implicit") else ""
    return f"accepted  {kind:<10} {name}{implicit}"


def summary(results: dict[str, dict]) -> list[str]:
    out = ["", "== Totals per kind (kind read statically: Pipe > Filter > Action > Tools)"]
    table = collections.defaultdict(collections.Counter)
    for result in results.values():
        table[result.get("kind", "?")][result["status"]] += 1
    out.append(f"{'kind':<11}{'files':>6}{'accepted':>10}{'pending':>9}{'refused':>9}")
    total = collections.Counter()
    for kind in [k for k in KINDS if k in table] + [k for k in table if k not in KINDS]:
        row = table[kind]
        total.update(row)
        n = sum(row.values())
        out.append(f"{kind:<11}{n:>6}{row['accepted']:>10}{row['pending']:>9}{row['refused']:>9}")
    out.append(
        f"{'all':<11}{sum(total.values()):>6}{total['accepted']:>10}"
        f"{total['pending']:>9}{total['refused']:>9}"
    )
    pending = [r for r in results.values() if r["status"] == "pending"]
    if pending:
        failed = sum(1 for r in pending if r.get("install_error"))
        later = sum(1 for r in pending if r.get("after_install"))
        out.append(
            f"pending (accepted, requirements to install): {len(pending)}; with "
            f"PIP_NO_INDEX={os.environ.get('PIP_NO_INDEX')}: install failed {failed}, "
            f"installed then refused {later}, installed and loaded "
            f"{len(pending) - failed - later}"
        )
        implicit = sum(1 for r in pending if r.get("implicit"))
        out.append(f"  of which pending only or partly for implicit requirements: {implicit}")
        counts = collections.Counter(text for r in pending for text in r["unmet"])
        listed = ", ".join(f"{text} ({n})" for text, n in counts.most_common())
        out.append(f"  unmet requirements (files): {listed}")
    for title, tools in (("Refusal causes (Pipe, Filter, Action)", False), ("Toolkits", True)):
        causes = collections.defaultdict(list)
        for name, result in results.items():
            if result["status"] == "refused" and (result.get("kind") == "tools") == tools:
                causes[result["cause"]].append(name)
        if not causes:
            continue
        out += ["", f"== {title}: {sum(map(len, causes.values()))} files"]
        for cause, names in sorted(causes.items(), key=lambda item: (-len(item[1]), item[0])):
            examples = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            out.append(f"{len(names):>4}  {cause}")
            out.append(f"      e.g. {examples}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--json", type=Path, help="write every result to this file")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway data dir")
    args = parser.parse_args()
    files = sorted(p for p in args.folder.rglob("*.py") if p.is_file())
    if not files:
        parser.error(f"no .py files under {args.folder}")
    data_dir = tempfile.mkdtemp(prefix="fnplatform-corpus-")
    setup_django(data_dir)
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_superuser("corpus", "corpus@example.invalid", None)
    print(f"{len(files)} files; data dir {data_dir}; PIP_NO_INDEX={os.environ['PIP_NO_INDEX']}")
    taken: set[str] = set()
    results: dict[str, dict] = {}
    for path in files:
        name = str(path.relative_to(args.folder))
        results[name] = check_one(user, path, owui_id(path, taken))
        print(describe(name, results[name]), flush=True)
    print("\n".join(summary(results)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.keep:
        print(f"data dir kept: {data_dir}")
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
