"""Check a plugin source in a throwaway process, so hostile code at import time
(an endless loop, os._exit, a segfault, a memory bomb) costs one child, not the server.

Run as `python -m functions.workers.check FUNCTION_ID SOURCE_DIR [HOST_FD]` with the
source on stdin; the result is the last line of stdout that starts with RESULT_MARK.
Host data the module asks for while it loads (the compat shims at import and in
`__init__`) goes over the socket on HOST_FD to the server, which answers it in the
thread that waits for the check, read-only, for the staff member saving the code:
plugin code never reaches the database itself.
"""

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import msgpack

from functions.services.loader import SourceError, validate_report
from functions.workers import cgroups, sandbox
from functions.workers.limits import Limits, exit_reason, worker_env
from functions.workers.protocol import HEADER, MAX_FRAME

# Runs one host-data request (name, args, kwargs) for the check and returns its value.
HostServer = Callable[[str, list, dict], Any]

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
    serve_host: HostServer | None = None,
) -> dict[str, Any]:
    """Return the LoadReport dict of a source, or raise SourceError (including time-outs).

    `python` is the interpreter of the function's requirement environment, if it has one.
    The source is written in the process's own scratch dir, not in source_dir.
    `serve_host` answers the host data the module asks for (none without it).
    """
    try:
        box = sandbox.prepare(python=python)
    except sandbox.SandboxUnavailable as exc:
        raise SourceError("sandbox_unavailable", "SandboxUnavailable", str(exc)) from None
    host, host_child = socket.socketpair()
    argv = [python, "-m", "functions.workers.check", function_id, box.source_dir]
    argv.append(str(host_child.fileno()))
    # A pids cgroup of its own: RLIMIT_NPROC would count every process of the sandbox uid.
    group = cgroups.create(limits.processes)
    try:
        process = _spawn(box, argv, limits, group, host_child.fileno())
        host_child.close()
        output = _run(process, source, timeout, _HostEnd(host, serve_host))
    finally:
        host.close()
        host_child.close()
        box.close()
        _remove(group)
    return _parse(output, box.returncode(process.returncode))


def _spawn(box, argv: list[str], limits: Limits, group, host_fd: int) -> subprocess.Popen:
    return subprocess.Popen(
        box.command(argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=box.env(worker_env()),
        cwd=box.cwd,
        pass_fds=[host_fd],
        preexec_fn=box.preexec(limits, group),
    )


class _HostEnd:
    """The server's end of a check's host channel, served by the thread that waits."""

    def __init__(self, sock: socket.socket, serve: HostServer | None) -> None:
        self.sock, self.serve, self.open = sock, serve, True

    def wait(self, process: subprocess.Popen, timeout: float) -> None:
        """Answer requests until the process ends; TimeoutExpired at the time limit."""
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise subprocess.TimeoutExpired(process.args, timeout)
            if not self.open:
                process.wait(timeout=remaining)
                return
            ready, _, _ = select.select([self.sock], [], [], min(remaining, 0.05))
            if ready:
                self.sock.settimeout(max(remaining, 0.01))
                try:
                    self.open = self._answer_one()
                except (OSError, ValueError):  # a stalled, cut or garbled request
                    self.open = False

    def _answer_one(self) -> bool:
        header = _read(self.sock, HEADER.size)
        if header is None:
            return False  # the process closed its end
        (size,) = HEADER.unpack(header)
        if size > MAX_FRAME:
            return False
        request = msgpack.unpackb(_read(self.sock, size) or b"", raw=False)
        reply = self._reply(request)
        payload = msgpack.packb(reply, use_bin_type=True, default=repr)
        self.sock.sendall(HEADER.pack(len(payload)) + payload)
        return True

    def _reply(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict) or request.get("release"):
            return {"ok": True, "value": None}
        if self.serve is None:
            return {"ok": False, "error": "refused: no host data for this check"}
        try:
            value = self.serve(
                str(request.get("name")), request.get("args") or [], request.get("kwargs") or {}
            )
            return {"ok": True, "value": value}
        except Exception as exc:  # the plugin sees it as a HostError with this text
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def _read(sock: socket.socket, size: int) -> bytes | None:
    chunks, remaining = [], size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _run(process: subprocess.Popen, source: str, timeout: float, host: _HostEnd) -> bytes:
    """Feed the source, answer the host data it asks for, keep the end of what the
    process prints (a plugin may print gigabytes at import: only OUTPUT_TAIL bytes ever
    sit in the server), and stop it at the time limit."""
    kept = bytearray()
    reader = threading.Thread(target=_drain, args=(process.stdout, kept), daemon=True)
    reader.start()
    try:
        with contextlib.suppress(BrokenPipeError):
            process.stdin.write(source.encode())
            process.stdin.close()
        host.wait(process, timeout)
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
    from open_webui import _host

    from functions.services.loader import check_source

    if len(sys.argv) > 3:
        _host.connect(int(sys.argv[3]))
    source = sys.stdin.buffer.read().decode("utf-8")
    try:
        # One process, one load: its channel serves only this check, for its saver.
        with _host.loading("check"):
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
