"""Run Python snippets inside Pyodide (under Node) from CPython: tests and benchmarks.

pyhash runs in the browser under Pyodide, so its tests must also run it there. One Node
process (`tests/pyodide_runner.mjs`) boots Pyodide once (seconds) and then serves many
snippets over newline-delimited JSON on stdin/stdout.

    with PyodideSession() as py:
        py.run("import pyhash; pyhash.__name__")                  # -> 'pyhash'
        py.run("result = x * 2", x=21)                            # -> 42
        py.run("len(data)", data=Path("big.rgba"))                # host file -> bytes, no base64
        py.execute("f(data)", data=buf).elapsed_ms                 # time the snippet alone

Under pytest use the session-scoped fixture `pyodide` from tests/conftest.py.
Standard library only, so bench/ scripts can import it too (add tests/ to sys.path).
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
RUNNER = REPO_ROOT / "tests" / "pyodide_runner.mjs"
LOCAL_PYODIDE = REPO_ROOT / "node_modules" / "pyodide"

BOOT_TIMEOUT_S = 120.0  # boot is ~4-8 s here; generous for a loaded CI machine
RUN_TIMEOUT_S = 300.0  # default per snippet; pass timeout= for long benchmarks


class PyodideError(Exception):
    """A snippet raised inside Pyodide. `traceback` is the Pyodide-side traceback text."""

    def __init__(self, type_name: str, message: str, traceback: str) -> None:
        super().__init__(f"{type_name}: {message}\n--- traceback inside Pyodide ---\n{traceback}")
        self.type_name = type_name
        self.message = message
        self.traceback = traceback


class PyodideRunnerError(RuntimeError):
    """The Node runner itself failed: could not boot, died, timed out, or rejected a request."""


@dataclass
class Response:
    """Everything the runner reported for one snippet."""

    result: Any  # JSON-decoded `result` variable, else the last expression's value
    elapsed_ms: float  # performance.now() around the snippet only (not input transfer)
    stdout: str  # what the snippet printed
    stderr: str
    network_attempts: list[str] = field(default_factory=list)  # URLs fetch() was asked for, ever


def _decode(value: Any) -> Any:
    """Undo the runner's {"__bytes__": base64} tagging, recursively."""
    if isinstance(value, dict):
        if set(value) == {"__bytes__"}:
            return base64.b64decode(value["__bytes__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class PyodideSession:
    """One Node process running Pyodide; `run`/`execute` send it snippets one at a time."""

    def __init__(self, node: str | None = None) -> None:
        node = node or shutil.which("node")
        if node is None:
            raise PyodideRunnerError("node not found on PATH (Node 20+ is needed to run Pyodide)")
        if not (LOCAL_PYODIDE / "pyodide.asm.wasm").is_file():
            raise PyodideRunnerError(
                f"{LOCAL_PYODIDE} is missing: run `python3 build.py test` (it runs npm ci)"
            )
        self._tmp = tempfile.TemporaryDirectory(prefix="kalkan-pyodide-")
        self._next_id = 0
        self._lock = threading.Lock()  # one request in flight at a time
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr_tail: deque[str] = deque(maxlen=50)
        self._proc = subprocess.Popen(
            [node, str(RUNNER)],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        # Reader threads: stdout feeds the response queue (so reads can time out); stderr is
        # drained so the pipe never fills, and its tail goes into error messages.
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        threading.Thread(target=self._pump_stderr, daemon=True).start()
        try:
            ready = self._read_message(BOOT_TIMEOUT_S)
        except BaseException:
            self.close()
            raise
        if not ready.get("ready"):
            self.close()
            raise PyodideRunnerError(f"Pyodide failed to boot: {ready.get('error')}")
        self.info: dict[str, Any] = ready  # pyodide_version, python_version, index_url, boot_ms, ...

    # -- public API -------------------------------------------------------------------------

    def run(self, code: str, /, *, files: dict[str, Path | str | bytes] | None = None,
            timeout: float = RUN_TIMEOUT_S, **inputs: Any) -> Any:
        """Run `code` in a fresh namespace inside Pyodide and return its JSON-decoded result.

        The result is the variable `result` if the snippet sets it, else the value of its last
        expression (None if neither). Keyword `inputs` become globals of the snippet:
        JSON values as-is; `bytes`/`bytearray` and `pathlib.Path` (a host file, read by Node)
        become Python `bytes`, passed without base64. `files` maps Pyodide paths to host paths or
        bytes written into Pyodide's filesystem first. Modules stay imported between calls.
        Raises PyodideError (with the Pyodide traceback) if the snippet raises.
        """
        return self.execute(code, files=files, timeout=timeout, **inputs).result

    def execute(self, code: str, /, *, files: dict[str, Path | str | bytes] | None = None,
                timeout: float = RUN_TIMEOUT_S, **inputs: Any) -> Response:
        """Like `run`, but returns the whole Response (elapsed_ms, stdout, ...)."""
        with self._lock:
            self._next_id += 1
            request_id = self._next_id
            request: dict[str, Any] = {"id": request_id, "code": code, "inputs": {}, "binary": {},
                                       "files": {}}
            temp_files: list[Path] = []
            try:
                for name, value in inputs.items():
                    if isinstance(value, (bytes, bytearray, memoryview, os.PathLike)):
                        request["binary"][name] = self._host_path(value, temp_files)
                    else:
                        request["inputs"][name] = value
                for dest, value in (files or {}).items():
                    request["files"][dest] = self._host_path(value, temp_files)
                self._send(request)
                message = self._read_message(timeout)
            finally:
                for path in temp_files:
                    path.unlink(missing_ok=True)
        if message.get("id") != request_id:
            raise PyodideRunnerError(f"runner answered request {message.get('id')}, not {request_id}")
        if not message["ok"]:
            error = message["error"]
            if error["type"] == "RunnerError":
                raise PyodideRunnerError(f"{error['message']}\n{error['traceback']}")
            raise PyodideError(error["type"], error["message"], error["traceback"])
        return Response(
            result=_decode(message["result"]),
            elapsed_ms=float(message["elapsed_ms"]),
            stdout=message["stdout"],
            stderr=message["stderr"],
            network_attempts=list(message["network_attempts"]),
        )

    def close(self) -> None:
        """End the Node process (closing stdin makes the runner's read loop finish)."""
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()  # type: ignore[union-attr]
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        self._tmp.cleanup()

    def __enter__(self) -> PyodideSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------

    def _host_path(self, value: Path | str | bytes | bytearray | memoryview,
                   temp_files: list[Path]) -> str:
        """A host file path the runner can read: the path itself, or bytes spilled to a temp file
        (a file keeps 48 MB buffers out of the JSON channel; the runner reads it with fs)."""
        if isinstance(value, (bytes, bytearray, memoryview)):
            path = Path(self._tmp.name) / f"input-{len(temp_files)}.bin"
            path.write_bytes(value)
            temp_files.append(path)
            return str(path)
        return str(Path(value).resolve())

    def _send(self, request: dict[str, Any]) -> None:
        try:
            self._proc.stdin.write(json.dumps(request) + "\n")  # type: ignore[union-attr]
            self._proc.stdin.flush()  # type: ignore[union-attr]
        except OSError as exc:
            raise PyodideRunnerError(f"runner is gone ({exc}); stderr:\n{self._stderr()}") from exc

    def _read_message(self, timeout: float) -> dict[str, Any]:
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                self._proc.kill()  # a hung snippet would block every later test otherwise
                raise PyodideRunnerError(f"no answer from Pyodide within {timeout} s; killed it")
            if line is None:
                raise PyodideRunnerError(
                    f"runner exited (code {self._proc.wait()}); stderr:\n{self._stderr()}"
                )
            if line.startswith("{"):
                return json.loads(line)
            self._stderr_tail.append(line)  # stray non-protocol output: keep for diagnostics

    def _pump_stdout(self) -> None:
        for line in self._proc.stdout:  # type: ignore[union-attr]
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _pump_stderr(self) -> None:
        for line in self._proc.stderr:  # type: ignore[union-attr]
            self._stderr_tail.append(line.rstrip("\n"))

    def _stderr(self) -> str:
        return "\n".join(self._stderr_tail)
