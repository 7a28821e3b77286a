#!/usr/bin/env python3
"""Kalkan's one entry point for setting up, running and testing the project.

Standard library only: it runs with the system `python3` before any virtualenv exists.
Every command first runs its setup steps (see SETUP_STEPS); each step is idempotent and skips
itself quickly when nothing changed, so running a command twice costs almost nothing.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import pwd
import shutil
import socket
import struct
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
PIP_STAMP = VENV / ".kalkan-pip-stamp.json"  # what was installed, for which pyproject.toml
NODE_MODULES = ROOT / "node_modules"
NPM_STAMP = NODE_MODULES / ".kalkan-npm-stamp"  # npm ci wipes node_modules, stamp included


def log(message: str) -> None:
    print(f"[build] {message}", flush=True)


def sh(cmd: Sequence[str | Path], **kwargs: object) -> None:
    """Run a command from the repo root, echoing it; stop the build if it fails."""
    log("$ " + " ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True, **kwargs)  # type: ignore[arg-type]


def sha256_of(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


# --- setup steps -------------------------------------------------------------------------------
# A step is a name and a function that makes one thing ready (and returns quickly if it already
# is). Commands list the steps they need in SETUP_STEPS below; new setup (Debian packages such as
# chromium, starting PostgreSQL, building the web bundle) goes there as another Step.


@dataclass(frozen=True)
class Step:
    name: str
    ensure: Callable[[], None]


def expand_extras(extras: set[str]) -> set[str]:
    """Extras plus those they pull in through self-references like "kalkan[decode,fast]"."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    prefix = project["name"] + "["
    result: set[str] = set()
    todo = list(extras)
    while todo:
        extra = todo.pop()
        if extra in result:
            continue
        result.add(extra)
        for requirement in optional.get(extra, []):
            if requirement.replace(" ", "").startswith(prefix):
                todo += requirement.split("[", 1)[1].split("]", 1)[0].split(",")
    return {e.strip() for e in result}


def ensure_venv_python() -> None:
    """.venv exists and its interpreter starts (a venv breaks if its base Python moved)."""
    if VENV_PYTHON.exists():
        if subprocess.run([VENV_PYTHON, "-c", "pass"], capture_output=True).returncode == 0:
            return
        log(f"{VENV} is broken; recreating it")
        shutil.rmtree(VENV)
    sh([sys.executable, "-m", "venv", VENV])


def pip_install_step(extras: set[str]) -> Step:
    """`pip install -e '.[extras]'` into .venv, skipped while pyproject.toml is unchanged and the
    extras (expanded) were already installed for it."""

    def ensure() -> None:
        ensure_venv_python()
        wanted = expand_extras(extras)
        pyproject_hash = sha256_of(ROOT / "pyproject.toml")
        stamp: dict[str, object] = {}
        if PIP_STAMP.exists():
            stamp = json.loads(PIP_STAMP.read_text())
        installed = set(stamp.get("extras", [])) if stamp.get("pyproject") == pyproject_hash else set()
        if wanted <= installed:
            log(f"python deps up to date (.[{','.join(sorted(extras))}])")
            return
        # Keep what this pyproject already had installed, so `run` after `test` doesn't shrink it.
        to_install = sorted(extras | installed)
        PIP_STAMP.unlink(missing_ok=True)  # a failed install must not look successful next time
        sh([VENV_PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "-e", f".[{','.join(to_install)}]"])
        PIP_STAMP.write_text(json.dumps(
            {"pyproject": pyproject_hash, "extras": sorted(expand_extras(set(to_install)))}))

    return Step(f"python venv .[{','.join(sorted(extras))}]", ensure)


def ensure_node_modules() -> None:
    """`npm ci` (exactly package-lock.json), skipped while node_modules matches the lock file."""
    lock_hash = sha256_of(ROOT / "package.json", ROOT / "package-lock.json")
    if NPM_STAMP.exists() and NPM_STAMP.read_text().strip() == lock_hash:
        log("node_modules up to date")
        return
    if shutil.which("npm") is None:
        sys.exit("[build] npm not found: Node.js 20+ with npm is needed (Pyodide runs under Node)")
    sh(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], stdin=subprocess.DEVNULL)
    NPM_STAMP.write_text(lock_hash + "\n")


def debian_packages_step(packages: list[str], why: str) -> Step:
    """apt-get install what is missing (CI and developers run as root on Debian)."""

    def ensure() -> None:
        query = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Status}\\n", *packages],
                               capture_output=True, text=True)
        installed = {line.split()[0] for line in query.stdout.splitlines() if line.endswith(" installed")}
        missing = [p for p in packages if p not in installed]
        if not missing:
            log(f"debian packages up to date ({why})")
            return
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        sh([*sudo, "apt-get", "update", "-qq"], env=env, stdin=subprocess.DEVNULL)
        sh([*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
           env=env, stdin=subprocess.DEVNULL)

    return Step(f"debian packages ({why})", ensure)


# --- PostgreSQL for the test suite --------------------------------------------------------------
# Every database test runs on SQLite and on PostgreSQL. The tests reach PostgreSQL at
# KALKAN_TEST_POSTGRES_URL, by default DEFAULT_TEST_POSTGRES_URL. Machines of this project's kind
# come with such a server running; on a fresh Debian machine this step installs Debian's
# `postgresql` and makes it usable (loopback only, trust auth), so the PostgreSQL half of the suite
# is never silently missing.
PG_HOST, PG_PORT, PG_USER, PG_DATABASE = "127.0.0.1", 5432, "postgres", "test"
DEFAULT_TEST_POSTGRES_URL = f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{PG_DATABASE}"
PG_CONF_NAME = "kalkan-test.conf"  # our drop-in in the cluster's conf.d/
PG_HBA_MARKER = "# kalkan (build.py): trust on loopback for the test suite"
PG_HBA_LINES = [
    PG_HBA_MARKER,
    "local   all   all                 trust",
    "host    all   all   127.0.0.1/32  trust",
    "host    all   all   ::1/128       trust",
]


def postgres_problem(user: str = PG_USER, port: int = PG_PORT) -> str | None:
    """None if PostgreSQL on 127.0.0.1:port lets `user` into database `test` without a password,
    else what went wrong. Speaks the first messages of PostgreSQL's wire protocol itself: build.py
    is standard library only and psql may not be installed yet."""
    params = f"user\0{user}\0database\0{PG_DATABASE}\0\0".encode()
    try:
        with socket.create_connection((PG_HOST, port), timeout=5) as sock:
            sock.sendall(struct.pack("!ii", 8 + len(params), 3 << 16) + params)  # StartupMessage v3.0
            reader = sock.makefile("rb")
            while True:
                header = reader.read(5)  # one type byte, then the length (which counts itself)
                if len(header) < 5 or struct.unpack("!i", header[1:])[0] < 4:
                    return "the server closed the connection (is it PostgreSQL?)"
                body = reader.read(struct.unpack("!i", header[1:])[0] - 4)
                if header[:1] == b"E":  # ErrorResponse: code-byte + text fields; C = SQLSTATE, M = message
                    fields = {f[:1]: f[1:].decode(errors="replace") for f in body.split(b"\0") if f}
                    return f"{fields.get(b'M')} (SQLSTATE {fields.get(b'C')})"
                if header[:1] == b"R" and body[:4] != b"\0\0\0\0":  # anything but AuthenticationOk
                    return f"user {user!r} needs a password"
                if header[:1] == b"Z":  # ReadyForQuery: logged in, database exists
                    sock.sendall(b"X" + struct.pack("!i", 4))  # Terminate
                    return None
    except OSError as exc:
        return f"cannot connect ({exc})"


def as_root(cmd: list[str]) -> list[str]:
    return cmd if os.geteuid() == 0 else ["sudo", *cmd]


def debian_pg_cluster() -> tuple[str, str, str] | None:
    """(version, name, status) of the Debian cluster (pg_lsclusters) that owns PG_PORT, if any."""
    if shutil.which("pg_lsclusters") is None:
        return None
    listing = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True).stdout
    for line in listing.splitlines():
        version, name, port, status, *_ = line.split()
        if port == str(PG_PORT):
            return version, name, status
    return None


def configure_pg_cluster(version: str, name: str) -> None:
    """Make a Debian cluster usable by the tests: listen on 127.0.0.1 only, trust local and
    loopback connections (our lines go first in pg_hba.conf: the first matching line wins), then
    create database `test` and a superuser role named after the current user (so plain `psql test`
    works). Idempotent; restarts the cluster only when a config file changed."""
    conf_dir = Path("/etc/postgresql") / version / name
    changed = False
    listen = "# kalkan (build.py): the test server is reachable from this machine only\n" \
             "listen_addresses = '127.0.0.1'\n"
    conf = conf_dir / "conf.d" / PG_CONF_NAME
    if not conf.exists():
        # Debian's postgresql.conf includes conf.d/; root-owned 0644 is readable by postgres.
        log(f"writing {conf}")
        subprocess.run(as_root(["tee", str(conf)]), input=listen, text=True, check=True,
                       stdout=subprocess.DEVNULL)
        changed = True
    hba = conf_dir / "pg_hba.conf"
    hba_text = subprocess.run(as_root(["cat", str(hba)]), capture_output=True, text=True,
                              check=True).stdout
    if PG_HBA_MARKER not in hba_text:
        log(f"prepending trust-on-loopback lines to {hba}")
        # tee rewrites the file in place, so it keeps its owner (postgres) and mode (0640).
        subprocess.run(as_root(["tee", str(hba)]), input="\n".join(PG_HBA_LINES) + "\n\n" + hba_text,
                       text=True, check=True, stdout=subprocess.DEVNULL)
        changed = True
    if changed:
        sh(as_root(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart"]))
    me = pwd.getpwuid(os.geteuid()).pw_name
    # Over TCP as `postgres`, which the trust lines above now allow whoever we are.
    sh(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"me={me}",
        "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER, "-d", "postgres"],
       text=True, input=(
           f"SELECT 'CREATE DATABASE {PG_DATABASE}' WHERE NOT EXISTS "
           f"(SELECT FROM pg_database WHERE datname = '{PG_DATABASE}') \\gexec\n"
           "SELECT format('CREATE ROLE %I SUPERUSER LOGIN', :'me') WHERE NOT EXISTS "
           "(SELECT FROM pg_roles WHERE rolname = :'me') \\gexec\n"))


def ensure_postgresql() -> None:
    """PostgreSQL answers on 127.0.0.1:5432 for user postgres, database test: already (done);
    or installed but stopped (start it); or not installed (install, start, configure)."""
    if os.environ.get("KALKAN_TEST_POSTGRES_URL"):
        log("postgresql: KALKAN_TEST_POSTGRES_URL is set, the tests use that server as it is")
        return
    problem = postgres_problem()
    if problem is None:
        log(f"postgresql up ({DEFAULT_TEST_POSTGRES_URL})")
        return
    log(f"postgresql on {PG_HOST}:{PG_PORT} not usable yet: {problem}")
    STEP_POSTGRESQL_PACKAGE.ensure()  # no-op when installed; its postinst creates cluster <ver>/main
    cluster = debian_pg_cluster()
    if cluster is None:  # e.g. create_main_cluster = false in /etc/postgresql-common/createcluster.conf
        version = max(os.listdir("/usr/lib/postgresql"), key=int)
        sh(as_root(["pg_createcluster", "--port", str(PG_PORT), version, "main"]))
        cluster = debian_pg_cluster()
        assert cluster is not None, f"pg_createcluster made no cluster on port {PG_PORT}"
    version, name, status = cluster
    if status.startswith("down"):
        sh(as_root(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "start"]))
        problem = postgres_problem()
    if problem is not None:
        configure_pg_cluster(version, name)
        problem = postgres_problem()
    if problem is not None:
        sys.exit(f"[build] PostgreSQL cluster {version}/{name} still refuses the tests: {problem}\n"
                 f"[build] fix it, or point KALKAN_TEST_POSTGRES_URL at a server that works")
    log(f"postgresql up ({DEFAULT_TEST_POSTGRES_URL}, cluster {version}/{name})")


# Meta's vpdq (pyproject extra "reference") compiles against these; tests compare with it.
VPDQ_BUILD_PACKAGES = [
    "libavcodec-dev", "libavformat-dev", "libavutil-dev", "libswscale-dev", "libavdevice-dev",
    "libavfilter-dev", "libswresample-dev", "pkg-config", "cmake", "g++", "ninja-build",
]


def ensure_web_build(force: bool = False) -> None:
    """web/dist/: everything the browser loads (Pyodide core, trimmed stdlib + pyhash archive,
    our hashed JS/CSS, .br/.gz copies, manifest.json); see web/build_web.py. Needs node_modules."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("kalkan_build_web", ROOT / "web" / "build_web.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build(force=force)


STEP_TEST_VENV = pip_install_step({"test", "reference"})
STEP_RUN_VENV = pip_install_step({"decode", "fast", "server"})
STEP_NODE_MODULES = Step("node_modules (npm ci)", ensure_node_modules)
STEP_VPDQ_BUILD_DEPS = debian_packages_step(VPDQ_BUILD_PACKAGES, "FFmpeg headers for the vpdq reference")
STEP_POSTGRESQL_PACKAGE = debian_packages_step(["postgresql"], "PostgreSQL server for the tests")
STEP_POSTGRESQL = Step("postgresql on 127.0.0.1:5432", ensure_postgresql)
STEP_WEB = Step("web assets (web/dist)", ensure_web_build)
# Debian's Chromium for the Playwright tests (never `playwright install`: it downloads a browser).
STEP_CHROMIUM = debian_packages_step(["chromium"], "Chromium for the browser tests")

# The one place that says what each command needs, in order.
SETUP_STEPS: dict[str, list[Step]] = {
    "setup": [STEP_VPDQ_BUILD_DEPS, STEP_POSTGRESQL, STEP_TEST_VENV, STEP_NODE_MODULES, STEP_CHROMIUM, STEP_WEB],
    "test": [STEP_VPDQ_BUILD_DEPS, STEP_POSTGRESQL, STEP_TEST_VENV, STEP_NODE_MODULES, STEP_CHROMIUM, STEP_WEB],
    "run": [STEP_RUN_VENV, STEP_NODE_MODULES, STEP_WEB],
    "web": [STEP_NODE_MODULES],
}


@contextmanager
def build_lock() -> Iterator[None]:
    """Serialise setup between concurrent build.py runs in this checkout (two pip installs into
    one .venv corrupt it). flock on the repo directory itself needs no lock file."""
    fd = os.open(ROOT, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def set_up(command: str) -> None:
    with build_lock():
        for step in SETUP_STEPS[command]:
            step.ensure()


# --- commands ----------------------------------------------------------------------------------


def cmd_setup(args: argparse.Namespace, extra: list[str]) -> int:
    set_up("setup")
    log("setup done")
    return 0


def cmd_test(args: argparse.Namespace, extra: list[str]) -> int:
    set_up("test")
    cmd = [str(VENV_PYTHON), "-m", "pytest", *extra]
    log("$ " + " ".join(cmd))
    return subprocess.run(cmd, cwd=ROOT).returncode


def cmd_run(args: argparse.Namespace, extra: list[str]) -> int:
    """Migrate the database and serve (python -m server); extra arguments go to the server."""
    set_up("run")
    cmd = [str(VENV_PYTHON), "-m", "server", *extra]
    log("$ " + " ".join(cmd))
    return subprocess.run(cmd, cwd=ROOT).returncode


def cmd_web(args: argparse.Namespace, extra: list[str]) -> int:
    """Build web/dist/ (skipped while its inputs are unchanged, unless --force)."""
    set_up("web")
    with build_lock():
        ensure_web_build(force=args.force)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 build.py",
        description="Set up, run and test Kalkan. Each command first installs what it needs "
        "(.venv via pip, node_modules via npm ci) and skips that when nothing changed.",
        epilog="examples:\n"
        "  python3 build.py test                  # whole test suite\n"
        "  python3 build.py test -k pyodide -x    # extra args go to pytest\n"
        "  python3 build.py run                   # serve on http://127.0.0.1:8000/\n"
        "  python3 build.py run --port 8080       # extra args go to `python -m server`\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser(
        "test", help="set up .venv (.[test]) and node_modules, then run pytest [PYTEST_ARGS...]",
        description="Set up everything the test suite needs, then run pytest with any extra "
        "arguments; exits with pytest's status. `test --help` shows pytest's help.",
    ).set_defaults(func=cmd_test)
    run = sub.add_parser(
        "run", help="set up .venv (.[decode,fast,server]), migrate the database and serve [SERVER_ARGS...]",
        description="Start the Kalkan server (`python -m server`: SQLite in ./data unless "
        "KALKAN_DATABASE_URL says otherwise) on http://127.0.0.1:8000/. Extra arguments go to the "
        "server, e.g. --port 8080 or --workers 2; `python -m server --help` lists them.",
    )
    run.set_defaults(func=cmd_run)
    web = sub.add_parser(
        "web", help="build the browser's assets into web/dist/ (run and test do it too)",
        description="Build web/dist/: Pyodide's core, the trimmed standard library + pyhash "
        "archive, our JS/CSS under content-hashed names, .br/.gz copies and manifest.json.",
    )
    web.add_argument("--force", action="store_true", help="rebuild even if nothing changed")
    web.set_defaults(func=cmd_web)
    sub.add_parser(
        "setup", help="only set up what `test` needs (.venv, node_modules)",
    ).set_defaults(func=cmd_setup)
    if argv[:1] in (["test"], ["run"]):
        # Everything after `test`/`run` goes to pytest/the server verbatim (argparse would reorder
        # or eat `--`).
        args, extra = parser.parse_args(argv[:1]), argv[1:]
    else:
        args = parser.parse_args(argv)
        extra = []
    try:
        return args.func(args, extra)
    except subprocess.CalledProcessError as exc:
        log(f"failed (exit {exc.returncode}): {' '.join(map(str, exc.cmd))}")
        return exc.returncode or 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
