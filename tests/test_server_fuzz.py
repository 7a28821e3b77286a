"""Fuzzing every endpoint that takes a body, on SQLite and on PostgreSQL: malformed requests never
cause a server error (no status >= 500) and never change the database (every row of every table
is the same before and after each request).

The app runs in-process (httpx.ASGITransport) for speed, with its lifespan and a migrated
database, exactly as `python -m server` builds it. Bodies come from Hypothesis: random JSON of every
type, valid requests with at least one thing broken (unknown fields, wrong types, bad hash values,
bad qualities, bad codes), often carrying the right case number and PIN of a real case so the
request gets as deep as validation lets it, raw bytes (invalid UTF-8, deep nesting, huge numbers),
and wrong content types. Which requests count as malformed is decided here from the documented
rules (docs/api.md), not by asking the server's own validation code.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import secrets
import string
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from server.app import create_app
from server.config import MAX_HASHES_PER_REQUEST, MIN_PDQ_QUALITY, Settings
from server.db import create_engine
from server.migrate import upgrade
from server.models import metadata
from pyhash.pdq import MAX_SET_BITS, MIN_SET_BITS
from server_client import pdq_like

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

EXAMPLES = 300  # per endpoint and database: 5-10 s each

# The documented formats, written out independently of server/validation.py and server/codes.py.
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
TYPOS = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None})
REF = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{16,128}")
CREATE_FIELDS = {"hashes", "language", "ref", "idempotency_key", "pin"}
HASH_FIELDS = {"signal_type", "value", "quality"}
CREDENTIAL_FIELDS = {"case_number", "pin"}
FIELD_NAMES = sorted(CREATE_FIELDS | HASH_FIELDS | CREDENTIAL_FIELDS | {"action", "confirm", "lang"})


def constants(*values: Any) -> st.SearchStrategy[Any]:
    """sampled_from, but shown short in Hypothesis' reports (some of these are 20 kB)."""
    return st.integers(0, len(values) - 1).map(values.__getitem__)


def code_form(value: Any, length: int) -> bool:
    """True if `value` is accepted as a case number (16) or PIN (10) as a person may type it."""
    if not isinstance(value, str) or len(value) > 4 * length or not value.isascii():
        return False
    compact = value.strip().upper().translate(TYPOS)
    return len(compact) == length and all(c in CROCKFORD for c in compact)


def plausible_credentials(body: Any) -> bool:
    """Could this body pass as a case number and PIN? (Then a wrong PIN is counted: a change.)"""
    return (isinstance(body, dict) and code_form(body.get("case_number"), 16)
            and code_form(body.get("pin"), 10))


def plausible_creation(body: Any) -> bool:
    """Very generous: anything shaped like a creation request at all."""
    return (isinstance(body, dict) and isinstance(body.get("hashes"), list) and bool(body["hashes"])
            and all(isinstance(h, dict) and h.get("signal_type") in ("pdq", "md5", "vpdq")
                    and isinstance(h.get("value"), str) for h in body["hashes"]))


# --- the app in-process, and snapshots of its database ---------------------------------------------


class InProcessServer:
    """The real app on its own event loop, with a migrated database and one real case in it."""

    def __init__(self, database_url: str, data_dir: Path) -> None:
        self.runner = asyncio.Runner()
        self.database_url = database_url
        self.runner.run(self._start(data_dir))

    async def _start(self, data_dir: Path) -> None:
        engine = create_engine(self.database_url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
        self.app = create_app(Settings(database_url=self.database_url, data_dir=data_dir, rate_limit_per_minute=0))
        self.lifespan = self.app.router.lifespan_context(self.app)
        await self.lifespan.__aenter__()
        # raise_app_exceptions=False: an exception in the app is a 500 response, which the
        # assertions then report with the request that caused it.
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app, raise_app_exceptions=False),
                                        base_url="http://kalkan.test")
        # Something in every table: a case with hashes, made with an idempotency key, and a
        # counted wrong PIN for another case number.
        created = await self.client.post("/api/cases", json={
            "hashes": [{"signal_type": "pdq", "value": pdq_like(secrets.token_bytes(32)), "quality": 90},
                       {"signal_type": "md5", "value": secrets.token_hex(16)}],
            "language": "en", "ref": "helpline-1", "idempotency_key": secrets.token_urlsafe(24)})
        assert created.status_code == 201, created.text
        self.case = created.json()
        other = await self.client.post("/api/cases", json={"hashes": [{"signal_type": "md5", "value": "a" * 32}]})
        wrong = await self.client.post("/api/cases/status", json={
            "case_number": other.json()["case_number"], "pin": "00000-00000"})
        assert wrong.status_code == 401

    async def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        tables = [t.name for t in metadata.sorted_tables] + ["alembic_version"]
        async with self.app.state.cases.engine.connect() as connection:
            return {name: sorted((tuple(row) for row in (await connection.execute(text(f"SELECT * FROM {name}"))).all()),
                                 key=repr)
                    for name in tables}

    def request(self, method: str, path: str, headers: dict[str, str], content: bytes) -> tuple[httpx.Response, bool]:
        """Send one request; returns the response and whether the database stayed the same."""
        async def send() -> tuple[httpx.Response, bool]:
            before = await self.snapshot()
            response = await self.client.request(method, path, headers=headers, content=content)
            return response, before == await self.snapshot()

        return self.runner.run(send())

    def close(self) -> None:
        async def stop() -> None:
            await self.client.aclose()
            await self.lifespan.__aexit__(None, None, None)

        try:
            self.runner.run(stop())
        finally:
            self.runner.close()


@pytest.fixture
def server(database_url: str, tmp_path: Path):
    instance = InProcessServer(database_url, tmp_path / "data")
    try:
        yield instance
    finally:
        instance.close()


def check(server: InProcessServer, method: str, path: str, content_type: str | None, body: bytes) -> httpx.Response:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response, unchanged = server.request(method, path, headers, body)
    shown = f"{method} {path} [{content_type}] " + (repr(body) if len(body) <= 600 else
                                                     f"{body[:300]!r} ... ({len(body)} bytes) ... {body[-300:]!r}")
    assert response.status_code < 500, f"{response.status_code} for {shown}: {response.text[:300]}"
    if method == "POST":
        assert 400 <= response.status_code < 500, f"{response.status_code} for {shown}: {response.text[:300]}"
    assert unchanged, f"the database changed after {response.status_code} for {shown}"
    return response


# --- strategies: values -------------------------------------------------------------------------

huge_ints = st.one_of(st.integers(), st.integers(min_value=2**63 - 2, max_value=2**64 + 2),
                      st.integers(min_value=10**30, max_value=10**40).map(lambda n: -n),
                      st.sampled_from([2**63, -(2**63) - 1, 10**4299, 10**200]))
floats = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([50.0, 90.5, 1e308, -0.0, 5e-324]))
texts = st.one_of(st.text(max_size=40), st.text(alphabet=string.printable, max_size=40),
                  st.sampled_from(["", " ", "\x00", "\ud800", "\udfff", "\u202e", "\ufeff", "ß" * 20,
                                   "𝟘" * 16, "ı" * 10, "null", "true", "[]", "{}", "0" * 70]))
scalars = st.one_of(st.none(), st.booleans(), huge_ints, floats, texts)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=12)), inner, max_size=6)),
    max_leaves=20)

hex64 = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64).filter(lambda v: v != "0" * 64)
# What images give: hypothesis likes simple values (000...001), which PDQ never produces.
pdq64 = hex64.map(lambda v: pdq_like(bytes.fromhex(v))).filter(
    lambda v: MIN_SET_BITS <= bin(int(v, 16)).count("1") <= MAX_SET_BITS)
hex32 = st.text(alphabet="0123456789abcdefABCDEF", min_size=32, max_size=32)


def not_hex(length: int) -> st.SearchStrategy[str]:
    rule = re.compile(f"[0-9a-fA-F]{{{length}}}")
    return st.one_of(
        texts, st.text(alphabet="0123456789abcdefg", min_size=length - 1, max_size=length + 1),
        st.just("0" * 64) if length == 64 else st.nothing(),  # the all-zero PDQ hash is refused
        hex64.map(lambda v: v[: length - 1] + "\u0660"), hex64.map(lambda v: " " + v[:length]),
        hex64.map(lambda v: (v * 2)[:length] + "\n"),
    ).filter(lambda v: not (isinstance(v, str) and rule.fullmatch(v) and not (length == 64 and v == "0" * 64)))


@st.composite
def valid_hash(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["pdq", "md5", "vpdq"]))
    if kind == "pdq":
        return {"signal_type": "pdq", "value": draw(pdq64), "quality": draw(st.integers(MIN_PDQ_QUALITY, 100))}
    if kind == "md5":
        return {"signal_type": "md5", "value": draw(hex32)}
    frames = draw(st.lists(st.tuples(hex64, st.integers(0, 100), st.integers(0, 10_000)), min_size=1, max_size=3))
    return {"signal_type": "vpdq", "value": json.dumps([f"{h},{q},{t / 10:.3f}" for h, q, t in frames])}


# Text that str.isdigit() or float() may take for a number but int() can't, or can't in time:
# superscripts and other scripts' digits, and numbers past int()'s 4300-digit limit.
number_texts = st.one_of(
    st.integers(-5, 150).map(str),
    constants("²", "¹⁰⁰", "٣", "१००", "1e999", "nan", "inf", "-0", "+5", " 5", "1_0", "0x10", "5.", ".5", ""),
    st.integers(4301, 6000).map(lambda n: "9" * n),
    st.integers(4290, 6000).map(lambda n: "0" * n + "90"),
)
# Deeply nested JSON text, up to about 60 kB (the body limit is 64 KiB).
deep_json = st.tuples(st.sampled_from(["[", '{"a":', '[{"a":']), st.integers(500, 12_000), st.booleans()).map(
    lambda t: t[0] * min(t[1], 60_000 // len(t[0])) + ("]" * min(t[1], 60_000 // len(t[0])) if t[2] and t[0] == "[" else ""))


def bad_vpdq() -> st.SearchStrategy[str]:
    """vPDQ signals (a JSON list of "hash,quality,seconds" strings inside the string) that break a rule."""
    items = st.lists(st.tuples(hex64 | not_hex(64), number_texts, number_texts | st.floats().map(repr)),
                     min_size=1, max_size=3)
    return st.one_of(
        texts,
        deep_json,
        constants("[]", "[1]", "{}", '""', "null", "[[]]", json.dumps(["a" * 64 + ",100"]), json.dumps(["a" * 64 + ",101,1.0"]),
                  json.dumps(["a" * 64 + ",-1,1.0"]), json.dumps(["a" * 64 + ",100,nan"]), json.dumps(["a" * 64 + ",100,-1"]),
                  json.dumps(["a" * 63 + "g,100,1.0"])),
        # Well-formed items with a broken quality or time (some of them may be valid: filtered out).
        items.map(lambda fs: json.dumps([f"{h},{q},{t}" for h, q, t in fs])).filter(lambda v: not _valid_vpdq(v)),
        st.tuples(hex64, st.integers(0, 100)).map(lambda t: json.dumps([f"{t[0]},{t[1]},1.0", 5])),
        hex64.map(lambda h: json.dumps({"hash": h})),
    )


def _valid_vpdq(value: str) -> bool:
    """The documented rule for one vPDQ signal string (docs/pyhash.md), for excluding valid ones."""
    for item in json.loads(value):
        parts = item.split(",")
        if len(parts) != 3:
            return False
        h, q, t = parts
        if not (re.fullmatch(r"[0-9a-fA-F]{64}", h) and re.fullmatch(r"[0-9]+", q) and int(q.lstrip("0")[:4] or "0") <= 100
                and re.fullmatch(r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?", t) and math.isfinite(float(t))):
            return False
    return True


@st.composite
def invalid_hash(draw: st.DrawFn) -> Any:
    """Something in a hashes list that the documented rules refuse."""
    base = draw(valid_hash())
    kind = base["signal_type"]
    how = draw(st.sampled_from(["not_object", "signal_type", "value", "quality", "unknown_field", "missing"]))
    if how == "not_object":
        return draw(scalars | st.lists(scalars, max_size=3))
    if how == "signal_type":
        return {**base, "signal_type": draw(json_values.filter(lambda v: v not in ("pdq", "md5", "vpdq")))}
    if how == "value":
        bad = {"pdq": not_hex(64), "md5": not_hex(32), "vpdq": bad_vpdq()}[kind]
        return {**base, "value": draw(st.one_of(bad, json_values.filter(lambda v: not isinstance(v, str))))}
    if how == "quality":
        if kind == "pdq":
            quality = draw(st.one_of(
                st.integers(max_value=MIN_PDQ_QUALITY - 1), st.integers(min_value=101), huge_ints.filter(lambda q: not 50 <= q <= 100),
                st.booleans(), st.none(), texts, st.lists(scalars, max_size=2), st.sampled_from(["90", 90.5, [90]]),
                # a JSON number with a fraction is not a whole number; 90.0 is left undecided here
                floats.filter(lambda q: not (q.is_integer() and MIN_PDQ_QUALITY <= q <= 100))))
        else:
            quality = draw(json_values.filter(lambda v: v is not None))  # quality is only for PDQ
        return {**base, "quality": quality}
    if how == "unknown_field":
        return {**base, draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in HASH_FIELDS)): draw(json_values)}
    # a required field missing (PDQ also needs its quality)
    gone = draw(st.sampled_from(["signal_type", "value"] + (["quality"] if kind == "pdq" else [])))
    return {k: v for k, v in base.items() if k != gone}


@st.composite
def invalid_hash_list(draw: st.DrawFn) -> Any:
    how = draw(st.sampled_from(["not_list", "empty", "too_many", "bad_item", "bad_item", "bad_vpdq", "bad_vpdq"]))
    if how == "not_list":
        return draw(json_values.filter(lambda v: not isinstance(v, list)))
    if how == "empty":
        return []
    if how == "too_many":
        return [{"signal_type": "md5", "value": f"{i:032x}"} for i in range(MAX_HASHES_PER_REQUEST + 1)]
    items = draw(st.lists(valid_hash(), max_size=4))
    bad = {"signal_type": "vpdq", "value": draw(bad_vpdq())} if how == "bad_vpdq" else draw(invalid_hash())
    items.insert(draw(st.integers(0, len(items))), bad)
    return items


def invalid_code(length: int) -> st.SearchStrategy[Any]:
    near = st.text(alphabet=CROCKFORD + "-OILU ", min_size=length - 2, max_size=length + 3)
    return st.one_of(json_values, near, st.sampled_from(["U" * length, "*" * length, "0" * (4 * length + 1)])).filter(
        lambda v: not code_form(v, length))


# --- strategies: whole request bodies ------------------------------------------------------------


@st.composite
def broken(draw: st.DrawFn, base: dict[str, Any], fields: dict[str, st.SearchStrategy[Any]], required: set[str]) -> Any:
    """`base` (a valid body) with one to three things broken."""
    body = dict(base)
    ways = draw(st.lists(st.sampled_from(["field", "field", "unknown", "missing", "wrap"]), min_size=1, max_size=3))
    for way in ways:
        if way == "field":
            name = draw(st.sampled_from(sorted(fields)))
            body[name] = draw(fields[name])
        elif way == "unknown":
            body[draw(st.text(max_size=16).filter(lambda k: k not in base and k not in fields))] = draw(json_values)
        elif way == "missing" and required & body.keys():
            del body[draw(st.sampled_from(sorted(required & body.keys())))]
        else:
            body["hashes" if "hashes" in base else "pin"] = draw(fields["hashes" if "hashes" in base else "pin"])
    if draw(st.booleans().map(lambda b: b and "wrap" in ways)):
        return draw(st.sampled_from([[body], {"body": body}, json.dumps(body)]))
    return body


def creation_bodies(server: InProcessServer) -> st.SearchStrategy[Any]:
    base = st.fixed_dictionaries(
        {"hashes": st.lists(valid_hash(), min_size=1, max_size=3)},
        optional={"language": st.sampled_from(["tr", "en"]), "ref": st.from_regex(REF, fullmatch=True),
                  "idempotency_key": st.from_regex(IDEMPOTENCY_KEY, fullmatch=True)})
    fields = {
        "hashes": invalid_hash_list(),
        "language": json_values.filter(lambda v: v not in ("tr", "en")) | st.sampled_from(["TR", "de", "tr ", "en-US"]),
        "ref": json_values.filter(lambda v: v is not None and not (isinstance(v, str) and REF.fullmatch(v)))
        | st.sampled_from(["A", "-x", "a" * 33, "a b", "ä"]),
        "idempotency_key": json_values.filter(lambda v: v is not None and not (isinstance(v, str) and IDEMPOTENCY_KEY.fullmatch(v)))
        | st.sampled_from(["short", "a" * 129, "x" * 15 + "!", "é" * 20]),
        "pin": invalid_code(10),
    }
    return base.flatmap(lambda b: broken(b, fields, {"hashes"}))


def credential_bodies(server: InProcessServer, with_hashes: bool) -> st.SearchStrategy[Any]:
    right = {"case_number": server.case["case_number"], "pin": server.case["pin"]}
    fields: dict[str, st.SearchStrategy[Any]] = {"case_number": invalid_code(16), "pin": invalid_code(10)}
    required = set(CREDENTIAL_FIELDS)
    if with_hashes:
        fields["hashes"] = invalid_hash_list()
        required.add("hashes")
        base = st.lists(valid_hash(), min_size=1, max_size=3).map(lambda hashes: {**right, "hashes": hashes})
        # The right case number and PIN with broken hashes, most of the time: the deepest path.
        return st.one_of(st.builds(lambda hashes: {**right, "hashes": hashes}, invalid_hash_list()),
                         base.flatmap(lambda b: broken(b, fields, required)))
    return st.just(right).flatmap(lambda b: broken(b, fields, required))


def encoded(value: Any) -> bytes:
    return json.dumps(value).encode()


raw_bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")),
    constants(*[b"", b"{", b"}", b"[" * 30_000, b"{\"a\":" * 5000, b"1" * 5000, b"-" + b"9" * 4400,
                     b"NaN", b"Infinity", b"-Infinity", b'{"hashes": NaN}', b"\xff\xfe{\x00}\x00", b"\xef\xbb\xbf{}",
                     b'{"pin": "\xc3\x28"}', b'{"hashes": [1e999]}', b"\x00" * 64, b"null", b"true", b'"x"',
                     b'{"hashes":[],"hashes":[]}', json.dumps({"hashes": "x" * 70_000}).encode()]),
)
json_content_types = st.sampled_from(["application/json", "application/json; charset=utf-8", "APPLICATION/JSON",
                                      " application/json ;x=y"])
wrong_content_types = st.one_of(
    st.none(), st.sampled_from(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                "application/jsonx", "application/json-patch+json", "text/json", "*/*", ""]),
    st.text(alphabet=string.printable.strip() + " ", max_size=30),
).filter(lambda t: t is None or t.split(";")[0].strip().lower() != "application/json")


def api_requests(server: InProcessServer, path: str) -> st.SearchStrategy[tuple[str, str | None, bytes]]:
    """(method, content type, body) for `path`, none of them a valid request."""
    if path == "/api/cases":
        structured = creation_bodies(server)
        random_json = json_values.filter(lambda v: not plausible_creation(v))
        valid_body = st.lists(valid_hash(), min_size=1, max_size=2).map(lambda h: {"hashes": h})
    else:
        structured = credential_bodies(server, with_hashes=path.endswith("/hashes"))
        random_json = json_values.filter(lambda v: not plausible_credentials(v))
        right = {"case_number": server.case["case_number"], "pin": server.case["pin"]}
        valid_body = st.lists(valid_hash(), min_size=1, max_size=2).map(lambda h: {**right, "hashes": h}) \
            if path.endswith("/hashes") else st.just(right)
    if path in ("/api/cases", "/api/cases/hashes"):
        # Broken hashes in an otherwise valid request (for /hashes: the right case number and
        # PIN), weighted up: the hash rules are the biggest part of validation.
        base = {} if path == "/api/cases" else {"case_number": server.case["case_number"], "pin": server.case["pin"]}
        hash_focused = invalid_hash_list().map(lambda hashes: {**base, "hashes": hashes})
    else:
        hash_focused = structured
    return st.one_of(
        st.tuples(st.just("POST"), json_content_types, structured.map(encoded)),
        st.tuples(st.just("POST"), json_content_types, hash_focused.map(encoded)),
        st.tuples(st.just("POST"), json_content_types, hash_focused.map(encoded)),
        st.tuples(st.just("POST"), json_content_types, random_json.map(encoded)),
        st.tuples(st.just("POST"), json_content_types, raw_bodies),
        # A valid request, but not sent as JSON: refused before anything is looked at.
        st.tuples(st.just("POST"), wrong_content_types, valid_body.map(encoded)),
        # Valid JSON in another encoding, or with invalid UTF-8 spliced in.
        st.tuples(st.just("POST"), st.just("application/json"), valid_body.flatmap(lambda b: st.one_of(
            st.sampled_from(["utf-16", "utf-32", "latin-1"]).map(lambda enc: json.dumps(b, ensure_ascii=False).encode(enc, "replace")
                                                               if enc != "latin-1" else json.dumps(b).encode() + b"\xe9"),
            st.integers(0, 10_000).map(lambda i: (lambda s: s[: i % len(s)] + b"\xff" + s[i % len(s):])(encoded(b))),
        ))),
        st.tuples(st.sampled_from(["GET", "PUT", "PATCH", "DELETE"]), st.just("application/json"), valid_body.map(encoded)),
    )


JSON_ENDPOINTS = ["/api/cases", "/api/cases/status", "/api/cases/hashes", "/api/cases/withdraw"]
# No shrinking: a failure is reported at once with the request that caused it (shrinking bodies
# of many kilobytes takes minutes), and print_blob lets `@reproduce_failure` replay it.
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
                         phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                HealthCheck.data_too_large, HealthCheck.large_base_example])


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_malformed_api_requests_change_nothing_and_never_fail(server: InProcessServer, path: str) -> None:
    seen: set[int] = set()

    @FUZZ_SETTINGS
    @given(api_requests(server, path))
    def fuzz(request: tuple[str, str | None, bytes]) -> None:
        method, content_type, body = request
        seen.add(check(server, method, path, content_type, body).status_code)

    fuzz()
    # The fuzzing reached the validation of fields, not only the JSON parser.
    assert {400, 415, 422} <= seen, seen


# --- the case page's form -----------------------------------------------------------------------


def hash_line(h: dict[str, Any]) -> str:
    return f"{h['signal_type']} {h['value']}" + (f" {h['quality']}" if "quality" in h else "")


bad_lines = st.one_of(
    st.text(max_size=60),
    constants("pdq", "pdq 1 2 3 4", "sha1 " + "a" * 40, "md5 " + "a" * 31, "md5 " + "a" * 32 + " 90",
              "pdq " + "0" * 64 + " 90", "pdq " + "a" * 64, "pdq " + "a" * 64 + " 101",
              "pdq " + "a" * 64 + f" {MIN_PDQ_QUALITY - 1}", "pdq " + "a" * 64 + " -5", "pdq " + "a" * 64 + " 9.5",
              "vpdq " + json.dumps(["a" * 64 + ",100,1.0"]), "vpdq [" + "[" * 10000,
              "vpdq " + json.dumps(["a" * 64 + ",1" + "0" * 5000 + ",1.0"]).replace(" ", "")),
    st.tuples(hex64, number_texts).map(lambda t: f"pdq {t[0]} {t[1]}"),
    st.tuples(hex64, number_texts).map(lambda t: f"pdq {t[0]} {t[1]}"),
    bad_vpdq().map(lambda v: "vpdq " + v.replace(" ", "")),
    hex64.map(lambda v: f"pdq {v} {MIN_PDQ_QUALITY - 1}"),
)


@st.composite
def hash_text(draw: st.DrawFn) -> str:
    """Pasted hash lines, at least one of them refused (or none at all)."""
    lines = [hash_line(h) for h in draw(st.lists(valid_hash().filter(lambda h: h["signal_type"] != "vpdq"), max_size=3))]
    for _ in range(draw(st.integers(0 if not lines else 1, 2)) or 0):
        lines.insert(draw(st.integers(0, len(lines))), draw(bad_lines))
    if not any(line.strip() for line in lines):
        return draw(st.sampled_from(["", "\n", "  \n\t"]))
    pasted = draw(st.sampled_from(["\n", "\r\n", "\n\n"])).join(lines)
    # Refused if any line is (or no line at all: an empty list of hashes).
    pasted_lines = [line for line in pasted.splitlines() if line.split()]
    assume(not pasted_lines or not all(_valid_pasted_line(line) for line in pasted_lines))
    return pasted


def _valid_pasted_line(line: str) -> bool:
    fields = line.split()
    fields[0] = fields[0].lower()
    if fields[:1] == ["md5"] and len(fields) == 2:
        return bool(re.fullmatch(r"[0-9a-fA-F]{32}", fields[1]))
    if fields[:1] == ["pdq"] and len(fields) == 3:
        return (bool(re.fullmatch(r"[0-9a-fA-F]{64}", fields[1])) and fields[1] != "0" * 64
                and MIN_SET_BITS <= bin(int(fields[1], 16)).count("1") <= MAX_SET_BITS
                and len(fields[2]) <= 3 and fields[2].isascii() and fields[2].isdigit()
                and MIN_PDQ_QUALITY <= int(fields[2]) <= 100)
    return False  # vpdq lines come only from bad_lines here


@st.composite
def form_fields(draw: st.DrawFn, server: InProcessServer) -> list[tuple[str, str]]:
    """Form fields of /case, never a valid request: broken codes, broken hashes, no confirmation."""
    number = draw(st.one_of(st.just(server.case["case_number"]), invalid_code(16).filter(lambda v: isinstance(v, str))))
    pin = draw(st.one_of(st.just(server.case["pin"]), invalid_code(10).filter(lambda v: isinstance(v, str))))
    action = draw(st.sampled_from(["status", "add", "withdraw", "", "delete", "ADD", None]))
    fields: dict[str, str | None] = {"case_number": number, "pin": pin, "action": action,
                                     "lang": draw(st.sampled_from(["tr", "en", "de", None, "\ud800"])),
                                     "hashes": draw(hash_text()) if action == "add" or draw(st.booleans()) else None,
                                     "confirm": draw(st.sampled_from([None, "yes", "no", "YES", "1"]))}
    both_right = number == server.case["case_number"] and pin == server.case["pin"]
    if both_right:
        # With the right case number and PIN, only some things are broken enough: bad pasted
        # hashes, a withdrawal without confirm=yes. Status with the right PIN is a valid request.
        if action == "withdraw":
            fields["confirm"] = draw(st.sampled_from([None, "no", "YES", "1", "yes "]))
        else:
            fields["action"] = "add"
            fields["hashes"] = draw(hash_text())
    items = [(k, v) for k, v in fields.items() if v is not None]
    extra = draw(st.lists(st.tuples(st.sampled_from(FIELD_NAMES) | st.text(max_size=10), st.text(max_size=20)), max_size=3))
    # Unknown fields are ignored by the form; repeated known ones must not let a valid value in.
    items += [(k, v) for k, v in extra if k not in ("case_number", "pin", "action", "hashes", "confirm")]
    return items


def urlencode(items: list[tuple[str, str]]) -> bytes:
    return urllib.parse.urlencode(items, encoding="utf-8", errors="surrogatepass").encode()


def multipart(items: list[tuple[str, str]], as_files: bool) -> tuple[str, bytes]:
    boundary = "kalkan" + secrets.token_hex(8)
    parts = []
    for name, value in items:
        filename = '; filename="x.txt"' if as_files else ""
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"{filename}\r\n\r\n'.encode()
                     + value.encode("utf-8", "surrogatepass") + b"\r\n")
    return f"multipart/form-data; boundary={boundary}", b"".join(parts) + f"--{boundary}--\r\n".encode()


def form_requests(server: InProcessServer) -> st.SearchStrategy[tuple[str, str | None, bytes]]:
    form = "application/x-www-form-urlencoded"
    fields = form_fields(server)
    random_fields = st.lists(st.tuples(st.sampled_from(FIELD_NAMES) | st.text(max_size=10),
                                       st.text(max_size=40) | st.sampled_from([server.case["case_number"], server.case["pin"]])),
                             max_size=8).filter(lambda items: not plausible_credentials(dict(items)))
    right = [("case_number", server.case["case_number"]), ("pin", server.case["pin"])]
    return st.one_of(
        st.tuples(st.just("POST"), st.just(form), fields.map(urlencode)),
        st.tuples(st.just("POST"), st.just(form), random_fields.map(urlencode)),
        # Raw bytes as a form: bad percent-escapes, invalid UTF-8 (raw and escaped), garbage.
        st.tuples(st.just("POST"), st.just(form), st.one_of(
            raw_bodies, st.sampled_from([b"%", b"%%", b"%zz=%zz", b"case_number=%FF%FE&pin=%C3%28", b"=&=&&==",
                                         b"a=" + b"%FF" * 1000, b"&" * 5000, b"pin=\xff\xfe&case_number=\x00"]),
            fields.map(lambda items: urlencode(items) + b"%FF&pin=%C3"))),
        # The same fields as multipart, as plain fields and as file uploads (the page never
        # takes files: an uploaded "file" in place of a field must be refused, not crash).
        fields.flatmap(lambda items: st.booleans().map(lambda files: ("POST", *multipart(items, files)))),
        st.booleans().map(lambda files: ("POST", *multipart(right, True))),
        st.tuples(st.just("POST"), st.sampled_from(["multipart/form-data", "multipart/form-data; boundary=",
                                                    "multipart/form-data; boundary=x"]), raw_bodies),
        # The right case number and PIN sent as JSON or text: the page reads no such body.
        st.tuples(st.just("POST"), wrong_content_types.filter(lambda t: t is None or not t.lower().startswith(("multipart", "application/x-www"))),
                  st.sampled_from([encoded(dict(right)), urlencode(right).replace(b"&", b"\n")])),
        st.tuples(st.sampled_from(["PUT", "PATCH", "DELETE"]), st.just(form), st.just(urlencode(right))),
    )


def test_malformed_case_page_forms_change_nothing_and_never_fail(server: InProcessServer) -> None:
    seen: set[int] = set()

    @FUZZ_SETTINGS
    @given(form_requests(server))
    def fuzz(request: tuple[str, str | None, bytes]) -> None:
        method, content_type, body = request
        seen.add(check(server, method, "/case", content_type, body).status_code)

    fuzz()
    assert 422 in seen, seen


# --- the server errors the fuzzing found, pinned down -----------------------------------------------

PDQ = "a" * 64


@pytest.mark.parametrize("quality", ["9" * 4301, "²", "¹⁰⁰"])
def test_page_form_with_an_unreadable_pdq_quality_is_refused(server: InProcessServer, quality: str) -> None:
    """Found by the form fuzzing: parse_pasted_hashes (server/pages.py) took `isdigit()` for a
    number, and `int()` then raised ValueError on '²' or 4301 digits: a 500, not the form's error."""
    body = urlencode([("case_number", server.case["case_number"]), ("pin", server.case["pin"]),
                      ("action", "add"), ("hashes", f"pdq {PDQ} {quality}")])
    response = check(server, "POST", "/case", "application/x-www-form-urlencoded", body)
    assert response.status_code == 422


@pytest.mark.parametrize("value", ["[" * 5000, json.dumps([f"{PDQ},1{'0' * 5000},1.0"])],
                         ids=["deeply-nested", "4301-digit-quality"])
def test_unreadable_vpdq_values_are_refused(server: InProcessServer, value: str) -> None:
    """Found by the API fuzzing: pyhash/vpdq.py from_threatexchange_signal lets RecursionError
    (deep nesting) and ValueError (int() of over 4300 digits) escape instead of VpdqFormatError,
    which the server does not catch: a 500 from the API and from the case page's form."""
    for path, extra in [("/api/cases", {}), ("/api/cases/hashes", {"case_number": server.case["case_number"],
                                                                    "pin": server.case["pin"]})]:
        body = encoded({**extra, "hashes": [{"signal_type": "vpdq", "value": value}]})
        response = check(server, "POST", path, "application/json", body)
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "hashes[0].value"
    # The same value pasted into the case page's form.
    body = urlencode([("case_number", server.case["case_number"]), ("pin", server.case["pin"]),
                      ("action", "add"), ("hashes", f"vpdq {value}")])
    assert check(server, "POST", "/case", "application/x-www-form-urlencoded", body).status_code == 422
