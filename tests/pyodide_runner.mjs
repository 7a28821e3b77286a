// Runs Python snippets inside Pyodide (CPython compiled to WebAssembly) under Node, the same
// interpreter the browser uses, so tests and benchmarks can check pyhash where it really runs.
//
// Booting Pyodide takes seconds, so one process serves many requests:
//   stdin:  one JSON request per line
//     {"id": 1, "code": "...",
//      "inputs": {"name": <any JSON value>},          -> Python globals, as decoded JSON
//      "binary": {"name": "/host/path"},              -> Python globals, as bytes read from that host file
//      "files":  {"/pyodide/path": "/host/path"}}     -> copied into Pyodide's virtual filesystem first
//   stdout: one JSON response per line
//     {"id": 1, "ok": true, "result": <JSON>, "elapsed_ms": 1.2, "stdout": "...", "stderr": "...",
//      "network_attempts": []}
//     {"id": 1, "ok": false, "error": {"type": "ValueError", "message": "...", "traceback": "..."}, ...}
// Large buffers travel as host file paths (read here with fs), never as base64 inside JSON.
// The first line on stdout is a "ready" message describing the interpreter (see `boot()` below).
//
// No network: Pyodide's core (wasm, stdlib zip, lock file) loads from node_modules/pyodide, no
// package is ever loaded with loadPackage (pyhash is standard library only), and `fetch` is
// replaced by a stub that records and refuses every request, so a regression shows up in
// `network_attempts` instead of silently reaching out to a CDN.

import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const INDEX_URL = path.join(REPO_ROOT, "node_modules", "pyodide") + path.sep;
const PYHASH_DIR = path.join(REPO_ROOT, "pyhash");
const PYODIDE_HOME = "/home/pyodide"; // Pyodide's default HOME and cwd; pyhash/ is copied below it.

// Protocol lines go through this function only; everything else that would print to stdout
// (console.log from libraries, Python's print) is redirected, so stdout stays parseable.
const protocolOut = process.stdout.write.bind(process.stdout);
function send(message) {
  protocolOut(JSON.stringify(message) + "\n");
}
console.log = console.info = console.debug = (...args) => console.error(...args);

// Network guard: record and refuse. Pyodide in Node reads local indexURL files with fs, so a
// correct setup never calls this.
const networkAttempts = [];
globalThis.fetch = async (resource) => {
  const url = typeof resource === "string" ? resource : (resource?.url ?? String(resource));
  networkAttempts.push(url);
  throw new Error(`network access is disabled in pyodide_runner.mjs (tried ${url})`);
};

// A refused fetch() that nobody awaits must not crash the runner (Node's default for unhandled
// rejections); it is already recorded in networkAttempts.
process.on("unhandledRejection", (reason) => console.error("unhandled rejection:", String(reason)));

// Per-request capture of Python's stdout/stderr (raw bytes, decoded once at the end).
let capturedOut = [];
let capturedErr = [];
const rawWriter = (sink) => ({
  write: (buf) => {
    sink().push(Buffer.from(buf));
    return buf.length;
  },
});

// Python half of the runner: prepares a fresh namespace per request, runs the snippet with
// Pyodide's eval_code (returns the last expression, like the REPL), and turns the outcome into
// JSON text. Kept separate from the exec so elapsed_ms times only the snippet itself.
const DRIVER = String.raw`
import base64, json, sys, traceback
from pyodide.code import eval_code

SNIPPET_FILENAME = "<snippet>"

def _kalkan_prepare(inputs_json, binary):
    ns = {"__name__": "__main__"}
    ns.update(json.loads(inputs_json))
    for name, proxy in binary.to_py(depth=1).items():
        ns[name] = proxy.to_bytes()  # one copy from the JS Uint8Array into Python bytes
    return ns

def _kalkan_exec(code, ns):
    """Returns None on success (value stored in ns), else the exception object."""
    try:
        ns["__kalkan_last__"] = eval_code(code, ns, filename=SNIPPET_FILENAME)
        return None
    except BaseException as exc:  # SystemExit too: a snippet must never end the runner
        return exc

def _kalkan_json_default(obj):
    # bytes (e.g. digests) come back tagged so the CPython side can turn them into bytes again.
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"__bytes__": base64.b64encode(bytes(obj)).decode("ascii")}
    raise TypeError(f"result of type {type(obj).__name__} is not JSON serializable")

def _kalkan_finish(ns, exc):
    if exc is None:
        # An explicit 'result' variable wins; otherwise the value of the last expression.
        value = ns["result"] if "result" in ns else ns.get("__kalkan_last__")
        try:
            return json.dumps({"ok": True, "result": value}, default=_kalkan_json_default)
        except (TypeError, ValueError) as json_exc:
            exc = json_exc
    # Keep only the snippet's own frames and below; the driver frames are noise.
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != SNIPPET_FILENAME:
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb if tb is not None else exc.__traceback__))
    return json.dumps({"ok": False, "error": {
        "type": type(exc).__name__, "message": str(exc), "traceback": text}})
`;

function copyPyhash(pyodide) {
  // Every .py file under pyhash/, at the same relative path under /home/pyodide/pyhash/.
  const files = fs.readdirSync(PYHASH_DIR, { recursive: true }).filter((f) => f.endsWith(".py"));
  for (const rel of files) {
    if (rel.split(path.sep).includes("__pycache__")) continue;
    const dest = path.posix.join(PYODIDE_HOME, "pyhash", ...rel.split(path.sep));
    pyodide.FS.mkdirTree(path.posix.dirname(dest));
    pyodide.FS.writeFile(dest, fs.readFileSync(path.join(PYHASH_DIR, rel)));
  }
  return files.length;
}

async function boot() {
  const started = performance.now();
  const { loadPyodide } = await import("pyodide");
  const pyodide = await loadPyodide({
    indexURL: INDEX_URL,
    stdout: (line) => capturedOut.push(Buffer.from(line + "\n")),
    stderr: (line) => capturedErr.push(Buffer.from(line + "\n")),
  });
  pyodide.setStdout(rawWriter(() => capturedOut));
  pyodide.setStderr(rawWriter(() => capturedErr));
  const pyhashFiles = copyPyhash(pyodide);
  pyodide.runPython(`import sys; sys.path.insert(0, ${JSON.stringify(PYODIDE_HOME)})`);
  pyodide.runPython(DRIVER);
  driver = {
    prepare: pyodide.globals.get("_kalkan_prepare"),
    exec: pyodide.globals.get("_kalkan_exec"),
    finish: pyodide.globals.get("_kalkan_finish"),
  };
  const info = JSON.parse(
    pyodide.runPython("import json, sys; json.dumps({'python': sys.version.split()[0], 'platform': sys.platform})"),
  );
  capturedOut = [];
  capturedErr = [];
  send({
    ready: true,
    pyodide_version: pyodide.version,
    python_version: info.python,
    platform: info.platform,
    index_url: INDEX_URL,
    pyhash_files: pyhashFiles,
    boot_ms: performance.now() - started,
    network_attempts: [...networkAttempts],
  });
  return pyodide;
}

// The driver's functions, looked up once (each globals.get() creates a PyProxy to free).
let driver;

function handle(pyodide, request) {
  capturedOut = [];
  capturedErr = [];
  for (const [dest, hostPath] of Object.entries(request.files ?? {})) {
    pyodide.FS.mkdirTree(path.posix.dirname(dest));
    pyodide.FS.writeFile(dest, fs.readFileSync(hostPath));
  }
  const binary = {};
  for (const [name, hostPath] of Object.entries(request.binary ?? {})) {
    // Pyodide converts plain Uint8Arrays (not Node's Buffer subclass); this view copies nothing.
    const buf = fs.readFileSync(hostPath);
    binary[name] = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  const ns = driver.prepare(JSON.stringify(request.inputs ?? {}), binary);
  const t0 = performance.now();
  const exc = driver.exec(request.code, ns);
  const elapsed = performance.now() - t0;
  const outcome = JSON.parse(driver.finish(ns, exc));
  ns.destroy(); // frees the namespace (and any large input buffers) right away
  exc?.destroy?.();
  return {
    ...outcome,
    elapsed_ms: elapsed,
    stdout: Buffer.concat(capturedOut).toString("utf8"),
    stderr: Buffer.concat(capturedErr).toString("utf8"),
    network_attempts: [...networkAttempts],
  };
}

async function main() {
  let pyodide;
  try {
    pyodide = await boot();
  } catch (err) {
    send({ ready: false, error: { type: "BootError", message: String(err), traceback: err?.stack ?? "" } });
    process.exit(1);
  }
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let request = {};
    try {
      request = JSON.parse(line);
      send({ id: request.id ?? null, ...handle(pyodide, request) });
    } catch (err) {
      // A runner-side failure (bad request, unreadable host file): report it, keep serving.
      send({
        id: request.id ?? null,
        ok: false,
        error: { type: "RunnerError", message: String(err?.message ?? err), traceback: err?.stack ?? "" },
        network_attempts: [...networkAttempts],
      });
    }
  }
}

await main();
