#!/usr/bin/env python3
"""Builds web/dist/: everything the browser loads, served by server/assets.py at /assets/.

Standard library only (build.py imports it before any virtualenv exists). `build()` is
idempotent: it skips itself while none of its inputs changed. What it makes:

- pyodide-<hash>/: Pyodide's core runtime from node_modules (pyodide.mjs, pyodide.asm.mjs,
  pyodide.asm.wasm) and a lock file with no packages (nothing is ever loaded with loadPackage).
  The directory name is the hash of its contents, so the 2.7 MB wasm stays cached while our own
  files change.
- python-<hash>.zip: the standard library archive Pyodide mounts at boot, trimmed to the modules
  that Pyodide's boot and the hashing worker actually import (found by running them:
  web/tools/stdlib_modules.mjs), plus pyhash's modules and web/src/py/kalkan_worker.py, so one
  archive is everything Python needs. Compiled to bytecode by Pyodide's own CPython
  (web/tools/compile_python.mjs: docstrings stripped, .pyc only), because compiling ~140 modules
  from source was most of each worker's boot. Stored uncompressed: the server's brotli does
  better on the whole than zip's per-file deflate.
- Our JS modules and CSS with content-hashed names (relative imports rewritten to the hashed
  names), and assets-config.js telling the worker where Pyodide and the archive are.
- FILE.br and FILE.gz beside every file (web/tools/compress.mjs).
- manifest.json: logical name -> hashed file, and per file its Content-Type and sizes; the
  server reads it (it serves only files it lists).

    python3 web/build_web.py [--force]     # or: python3 build.py web
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
SRC = WEB / "src"
TOOLS = WEB / "tools"
DIST = WEB / "dist"
PYODIDE = ROOT / "node_modules" / "pyodide"
VENDOR_FILES = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm")
STAMP = DIST / ".build-stamp"
MANIFEST = DIST / "manifest.json"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kalkan-web"
CSS_SOURCES = (WEB / "static" / "kalkan.css",)
# Archive members kept although the discovery run did not import them: codecs a browser's text
# may name. Everything else the worker needs is found by running it.
EXTRA_STDLIB = ("encodings/ascii.py", "encodings/latin_1.py", "encodings/utf_8_sig.py")
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same inputs give the same bytes
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".wasm": "application/wasm",
    ".zip": "application/zip",
    ".json": "application/json",
}
LOCAL_IMPORT = re.compile(r"""(["'])\./([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.js)\1""")


def log(message: str) -> None:
    print(f"[web] {message}", flush=True)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def input_files() -> list[Path]:
    files = [Path(__file__), *sorted(TOOLS.glob("*.mjs")), *CSS_SOURCES]
    files += sorted(p for p in SRC.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    files += sorted((ROOT / "pyhash").glob("*.py"))
    files += [PYODIDE / name for name in (*VENDOR_FILES, "python_stdlib.zip", "pyodide-lock.json", "package.json")]
    return files


def input_digest() -> str:
    digest = hashlib.sha256()
    for path in input_files():
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def node(*args: str | Path) -> str:
    if shutil.which("node") is None:
        sys.exit("[web] node not found: Node.js 20+ is needed to build the web assets")
    done = subprocess.run(["node", *map(str, args)], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        done.check_returncode()
    return done.stdout


def write_stored_zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16
            archive.writestr(info, members[name])


def build_pyodide(out: Path) -> tuple[str, dict[str, object]]:
    """Copies the core runtime into pyodide-<hash>/; returns its name and the lock file's info."""
    lock = json.loads((PYODIDE / "pyodide-lock.json").read_text())
    small_lock = json.dumps({"info": lock["info"], "packages": {}}, sort_keys=True).encode()
    contents = {name: (PYODIDE / name).read_bytes() for name in VENDOR_FILES}
    contents["pyodide-lock.json"] = small_lock
    digest = hashlib.sha256()
    for name in sorted(contents):
        digest.update(name.encode() + b"\0" + sha(contents[name]).encode())
    directory = f"pyodide-{digest.hexdigest()[:16]}"
    (out / directory).mkdir()
    for name, data in contents.items():
        (out / directory / name).write_bytes(data)
    return directory, lock["info"]


def build_python_archive(out: Path) -> tuple[str, dict[str, int]]:
    """The trimmed stdlib + pyhash + kalkan_worker archive; returns its name and counts."""
    found = json.loads(node(TOOLS / "stdlib_modules.mjs", PYODIDE, ROOT, SRC / "py"))
    members: dict[str, bytes] = {}
    with zipfile.ZipFile(PYODIDE / "python_stdlib.zip") as stdlib:
        names = set(stdlib.namelist())
        missing = [m for m in found["stdlib"] if m not in names]
        if missing:
            raise RuntimeError(f"discovered modules not in python_stdlib.zip: {missing}")
        for name in [*found["stdlib"], *EXTRA_STDLIB]:
            members[name] = stdlib.read(name)
        total = sum(1 for n in names if not n.endswith("/"))
    for rel in found["sources"]:
        source = SRC / "py" / rel if rel == "kalkan_worker.py" else ROOT / rel
        members[rel] = source.read_bytes()
    source_zip = out.parent / f"{out.name}-python-source.zip"
    blob_path = out / "python.zip"
    write_stored_zip(source_zip, members)
    try:
        compiled = json.loads(node(TOOLS / "compile_python.mjs", PYODIDE, source_zip, blob_path))
    finally:
        source_zip.unlink(missing_ok=True)
    name = f"python-{sha(blob_path.read_bytes())[:16]}.zip"
    blob_path.rename(out / name)
    return name, {"stdlib_kept": len(found["stdlib"]) + len(EXTRA_STDLIB), "stdlib_total": total,
                  "sources": len(found["sources"]), **compiled}


def build_scripts(out: Path, generated: dict[str, str]) -> dict[str, str]:
    """Every web/src/*.js (and the generated modules) under a content-hashed name; relative
    imports point at the hashed names. Returns logical name -> hashed name."""
    sources = {p.name: p.read_text() for p in sorted(SRC.glob("*.js"))}
    sources.update(generated)
    hashed: dict[str, str] = {}
    visiting: set[str] = set()

    def name_of(logical: str) -> str:
        if logical in hashed:
            return hashed[logical]
        if logical in visiting:
            raise RuntimeError(f"import cycle through {logical}")
        visiting.add(logical)

        def rewrite(match: re.Match[str]) -> str:
            target = match.group(2)
            if target not in sources:
                raise RuntimeError(f"{logical} refers to ./{target}, which is not in web/src")
            return f"{match.group(1)}./{name_of(target)}{match.group(1)}"

        text = LOCAL_IMPORT.sub(rewrite, sources[logical])
        data = text.encode()
        stem = logical[: -len(".js")]
        hashed[logical] = f"{stem}.{sha(data)[:16]}.js"
        (out / hashed[logical]).write_bytes(data)
        visiting.discard(logical)
        return hashed[logical]

    for logical in sources:
        name_of(logical)
    return hashed


def build_styles(out: Path) -> dict[str, str]:
    names = {}
    for css in CSS_SOURCES:
        data = css.read_bytes()
        names[css.name] = f"{css.stem}.{sha(data)[:16]}.css"
        (out / names[css.name]).write_bytes(data)
    return names


def compress(out: Path) -> dict[str, dict[str, int | None]]:
    files = sorted(str(p) for p in out.rglob("*") if p.is_file())
    result = json.loads(node(TOOLS / "compress.mjs", CACHE, *files))
    return {str(Path(f).relative_to(out)): sizes for f, sizes in result.items()}


def build(force: bool = False) -> dict[str, object]:
    """Makes web/dist/ up to date; returns the manifest."""
    digest = input_digest()
    if not force and MANIFEST.exists() and STAMP.exists() and STAMP.read_text().strip() == digest:
        log("web/dist up to date")
        return json.loads(MANIFEST.read_text())
    log("building web/dist")
    out = DIST.with_name(f"dist.tmp-{os.getpid()}")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    try:
        pyodide_dir, lock_info = build_pyodide(out)
        archive, counts = build_python_archive(out)
        config = (
            "// Generated by web/build_web.py: where the hashing worker finds Pyodide and Python.\n"
            f"export const PYODIDE_DIR = {json.dumps('./' + pyodide_dir + '/')};\n"
            f"export const PYTHON_ARCHIVE = {json.dumps('./' + archive)};\n"
        )
        files = build_scripts(out, {"assets-config.js": config})
        files.update(build_styles(out))
        compressed = compress(out)
        assets = {}
        for path in sorted(p for p in out.rglob("*") if p.is_file() and p.suffix not in (".br", ".gz")):
            rel = str(path.relative_to(out))
            assets[rel] = {"type": CONTENT_TYPES[path.suffix], "bytes": path.stat().st_size,
                           "encodings": {k: v for k, v in compressed[rel].items() if v is not None}}
        manifest = {
            "version": 1,
            "files": files,
            "pyodide": {"dir": pyodide_dir + "/", "python_archive": archive, "lock_info": lock_info, **counts},
            "assets": assets,
        }
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        (out / ".build-stamp").write_text(digest + "\n")
        old = DIST.with_name(f"dist.old-{os.getpid()}")
        if DIST.exists():
            DIST.rename(old)
        out.rename(DIST)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    worker_bytes = cold_visit_bytes(manifest, "hashing-page.js")
    log(f"web/dist built: cold visit of the hashing page ~{worker_bytes / 1e6:.2f} MB with brotli "
        f"(stdlib archive: {counts['stdlib_kept']} of {counts['stdlib_total']} files)")
    return manifest


def cold_visit_bytes(manifest: dict[str, object], page_script: str, encoding: str = "br") -> int:
    """Bytes of every asset a cold visit to a page using `page_script` loads, with `encoding`
    (the page's HTML and /static CSS not included): its module graph, the worker's, Pyodide's
    core and the Python archive. Each asset is counted once (the HTTP cache serves repeats)."""
    assets: dict[str, dict[str, object]] = manifest["assets"]  # type: ignore[assignment]
    files: dict[str, str] = manifest["files"]  # type: ignore[assignment]
    pyodide: dict[str, str] = manifest["pyodide"]  # type: ignore[assignment]
    wanted = set(files.values()) - {v for k, v in files.items() if k.endswith(".css")}
    wanted -= {v for k, v in files.items() if k.endswith("-page.js") and k != page_script}
    wanted |= {pyodide["dir"] + name for name in (*VENDOR_FILES, "pyodide-lock.json")}
    wanted.add(pyodide["python_archive"])
    total = 0
    for name in wanted:
        info = assets[name]
        total += info["encodings"].get(encoding, info["bytes"])  # type: ignore[union-attr,index]
    return total


if __name__ == "__main__":
    build(force="--force" in sys.argv[1:])
