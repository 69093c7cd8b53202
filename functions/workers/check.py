"""Check a plugin source in a throwaway process, so hostile code at import time
(an endless loop, os._exit, a segfault, a memory bomb) costs one child, not the server.

Run as `python -m functions.workers.check FUNCTION_ID SOURCE_DIR` with the source on
stdin; the result is the last line of stdout that starts with RESULT_MARK.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from typing import Any

from functions.services.loader import SourceError, validate_report
from functions.workers import cgroups, sandbox
from functions.workers.limits import Limits, exit_reason, worker_env

RESULT_MARK = "@@fnplatform-check@@ "
# The end of the checking process's output the server keeps: enough for the result
# line (reports with large valves schemas included), never what a plugin floods.
OUTPUT_TAIL = 8 * 1024 * 1024


def check_in_worker(
    source: str,
    *,
    function_id: str,
    source_dir: str,
    timeout: float,
    limits: Limits,
    python: str = sys.executable,
) -> dict[str, Any]:
    """Return the LoadReport dict of a source, or raise SourceError (including time-outs).

    `python` is the interpreter of the function's requirement environment, if it has one.
    The source is written in the process's own scratch dir, not in source_dir.
    """
    try:
        box = sandbox.prepare(python=python)
    except sandbox.SandboxUnavailable as exc:
        raise SourceError("sandbox_unavailable", "SandboxUnavailable", str(exc)) from None
    argv = [python, "-m", "functions.workers.check", function_id, box.source_dir]
    # A pids cgroup of its own: RLIMIT_NPROC would count every process of the sandbox uid.
    group = cgroups.create(limits.processes)
    try:
        process = _spawn(box, argv, limits, group)
        output = _run(process, source, timeout)
    finally:
        box.close()
        _remove(group)
    return _parse(output, box.returncode(process.returncode))


def _spawn(box, argv: list[str], limits: Limits, group) -> subprocess.Popen:
    return subprocess.Popen(
        box.command(argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=box.env(worker_env()),
        cwd=box.cwd,
        preexec_fn=box.preexec(limits, group),
    )


def _run(process: subprocess.Popen, source: str, timeout: float) -> bytes:
    """Feed the source, keep the end of what the process prints (a plugin may print
    gigabytes at import: only OUTPUT_TAIL bytes ever sit in the server), and stop it at
    the time limit."""
    kept = bytearray()
    reader = threading.Thread(target=_drain, args=(process.stdout, kept), daemon=True)
    reader.start()
    try:
        with contextlib.suppress(BrokenPipeError):
            process.stdin.write(source.encode())
            process.stdin.close()
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SourceError(
            "load_timeout",
            "LoadTimeout",
            f"loading the code took longer than {timeout:g} s (an endless loop at import?)",
        ) from None
    finally:
        _kill_group(process)  # whatever the plugin started goes with it
        reader.join(5)
    return bytes(kept)


def _drain(stream, kept: bytearray) -> None:
    while chunk := stream.read(1 << 16):
        kept.extend(chunk)
        if len(kept) > OUTPUT_TAIL:
            del kept[: len(kept) - OUTPUT_TAIL]


def _remove(group) -> None:
    if group is not None:
        cgroups.kill_and_remove(group)


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _parse(output: bytes, returncode: int | None) -> dict[str, Any]:
    lines = [
        line
        for line in output.decode(errors="replace").splitlines()
        if line.startswith(RESULT_MARK)
    ]
    if not lines:
        raise SourceError(
            "load_crashed",
            "LoadCrashed",
            f"loading the code killed the checking process (it {exit_reason(returncode)})",
        )
    try:
        result = json.loads(lines[-1][len(RESULT_MARK) :])
        if result["ok"]:
            # Plugin code shared the process and could have printed this line itself:
            # it must at least be a well-formed report before the server stores it.
            return validate_report(result["report"])
        detail = result["detail"]
        error = SourceError(
            str(detail["code"]), str(detail["type"]), str(detail["message"]), detail["line"]
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise SourceError(
            "bad_report", "BadReport", f"the checking process gave no valid report ({exc})"
        ) from None
    raise error


def main() -> None:
    import django

    django.setup()
    from functions.services.loader import check_source

    source = sys.stdin.buffer.read().decode("utf-8")
    try:
        report = check_source(source, function_id=sys.argv[1], source_dir=sys.argv[2])
        result = {"ok": True, "report": report.as_dict()}
    except SourceError as exc:
        result = {"ok": False, "detail": exc.detail}
    # Plugins may have printed anything; the marker makes our line unambiguous.
    sys.stdout.write("\n" + RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: plugin threads must not keep us alive


if __name__ == "__main__":
    main()
