"""The partner API under /v1: StopNCII.org's wire format, so python-threatexchange's StopNCII
client and HMA work against Kalkan with nothing but `base_url_override`. See docs/partner-api.md.

    GET  /v1/FetchHashes?startTimestamp=&pageSize=&nextPageToken=[&signalTypes=]
    POST /v1/SubmitFeedback  {"count", "hashFeedbacks": [{"hashValue", "feedbackValue", "tags"}]}
    POST /v1/SubmitHashes    {"count", "hashRecords": [{"signalType", "hashValue", "CSPFeedbacks"}]}

Headers Ocp-Apim-Subscription-Key (which partner) and x-functions-key (this endpoint's key).
Refusals are JSON `{"error": {"code", "message", "field"}}` naming the parameter, header or
body field and the rule; a refused request changes nothing. Nothing about the caller (address,
user agent) is logged or stored.
"""

from __future__ import annotations

import base64
import hmac
import struct
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import Any

import pyhash
from sqlalchemy.engine import Connection
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from . import exchange
from .api import error_response, read_json
from .client_address import rate_limit_key
from .config import Settings
from .errors import ApiError, InvalidField
from .page_prefetch import PageKey, PagePrefetch
from .partners import FUNCTION_HEADER, SUBSCRIPTION_HEADER, Partner, PartnerStore
from .ratelimit import KnownKeys, RateLimiter
from .validation import json_object
from .security import keyed

PREFIX = "/v1"
DEFAULT_PAGE_SIZE = 800  # python-threatexchange's default
MAX_PAGE_SIZE = 2000
# A FetchHashes page's JSON stops at about this many bytes (at least one record): vPDQ values are
# up to 64,000 characters (pyhash.signals.MAX_VPDQ_CHARS), and feedback tags up to 3 KB a partner.
MAX_PAGE_BYTES = 2_000_000
MAX_ITEMS = 1000  # feedbacks or hashes per request
MAX_BODY_BYTES = 1024 * 1024  # partners' batches (vPDQ values can be tens of KB); 64 KB elsewhere
MAX_TAGS, MAX_TAG_LENGTH = 32, 100
FETCH_PARAMETERS = ("startTimestamp", "pageSize", "nextPageToken", "signalTypes")
_TOKEN = struct.Struct(">BQQQB")  # version, partner id, after change number, timestamp, type mask
_TOKEN_VERSION = 1
_TOKEN_MAC = 16
_MAX_TIMESTAMP = 2**53


@dataclass(frozen=True)
class RenderedPage:
    """A FetchHashes answer ready to send, and the key of the page after it (None: the last)."""

    body: bytes
    next: PageKey | None


@dataclass
class PartnerService:
    database: Any  # server.db.Database
    partners: PartnerStore
    rate_limiter: RateLimiter
    pseudonym_key: bytes = b""
    token_key: bytes = b""
    prefetch: PagePrefetch[RenderedPage] = field(default_factory=PagePrefetch)

    async def start(self) -> None:
        await self.partners.start()
        secret = self.partners.secret
        self.pseudonym_key = keyed(secret, "case-pseudonym", "")
        self.token_key = keyed(secret, "page-token", "")

    async def close(self) -> None:
        await self.prefetch.close()

    # -- page tokens: opaque, and tamper-proof (HMAC under the server secret) --------------------

    def make_token(self, partner_id: int, after_seq: int, timestamp: int, mask: int) -> str:
        payload = _TOKEN.pack(_TOKEN_VERSION, partner_id, after_seq, timestamp, mask)
        mac = hmac.digest(self.token_key, payload, "sha256")[:_TOKEN_MAC]
        return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode()

    def read_token(self, token: str, partner_id: int, mask: int) -> tuple[int, int]:
        """(after change number, timestamp) from a token this server gave `partner_id` for these
        signal types; else a 400 naming nextPageToken."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError:
            raw = b""
        if len(raw) != _TOKEN.size + _TOKEN_MAC or not hmac.compare_digest(
                raw[_TOKEN.size:], hmac.digest(self.token_key, raw[:_TOKEN.size], "sha256")[:_TOKEN_MAC]):
            raise _bad("nextPageToken", "nextPageToken is not a token this server issued: pass the "
                       "nextPageToken of the previous page unchanged, or leave it out to start from startTimestamp")
        version, owner, after_seq, timestamp, token_mask = _TOKEN.unpack(raw[:_TOKEN.size])
        if version != _TOKEN_VERSION or owner != partner_id:
            raise _bad("nextPageToken", "nextPageToken was issued to another partner")
        if token_mask != mask:
            raise _bad("nextPageToken", "nextPageToken was issued for other signalTypes: send the same "
                       "signalTypes as for the first page")
        return after_seq, timestamp


async def open_service(database: Any, settings: Settings) -> PartnerService:
    service = PartnerService(database, PartnerStore(database),
                             RateLimiter(settings.partner_rate_limit_per_minute))
    await service.start()
    return service


def _bad(field: str, message: str, status: int = 400, code: str = "invalid_parameter") -> ApiError:
    return ApiError(message, field=field, code=code, status=status)


Handler = Callable[[Request, PartnerService, Partner], Awaitable[Response]]


def partner_endpoint(endpoint: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Turn away a client with too many failed authentications (429) unless its subscription
    key is known good, authenticate (401/403), rate-limit per partner (429), then run; refusals
    as JSON."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            state = request.app.state
            service: PartnerService = state.partner_api
            failures: RateLimiter = state.partner_auth_failures
            known: KnownKeys = state.partner_known_keys
            subscription_key = request.headers.get(SUBSCRIPTION_HEADER)
            client = rate_limit_key(request)
            # A key that authenticated here before skips the check: a flood of bad keys from an
            # address it shares (an egress, an untrusted proxy) must not stop a partner's sync.
            # Nobody gets known without a valid 256-bit key, so the flood itself never does.
            known_good = subscription_key in known
            try:
                # Before the key lookup, so that a flood of bad keys costs no database read. The token
                # is taken now, so that requests in flight at once cannot all get past, and given back
                # unless the keys turn out missing or unknown (a 403 needs the partner's own keys).
                if not known_good and (wait := failures.allow(client)):
                    raise ApiError(f"too many failed authentications from this client (at most {failures.per_minute} "
                                   f"a minute): check the {SUBSCRIPTION_HEADER} and {FUNCTION_HEADER} keys, then "
                                   "try again after Retry-After seconds", field=SUBSCRIPTION_HEADER,
                                   code="rate_limited", status=429, retry_after=int(wait) + 1)
                try:
                    # Every time, known or not: a revoked or rotated key is refused at once.
                    partner = await service.partners.authenticate(
                        subscription_key, request.headers.get(FUNCTION_HEADER), endpoint)
                except ApiError as refused:
                    if refused.status == 401 and known_good:
                        known.discard(subscription_key)  # known only while it keeps authenticating
                        failures.allow(client)  # and this failure counts like any other
                    elif refused.status != 401 and not known_good:
                        failures.refund(client)
                    raise
                if not known_good:
                    failures.refund(client)
                if subscription_key:
                    known.add(subscription_key)
                wait = service.rate_limiter.allow(f"partner:{partner.id}")
                if wait:
                    raise ApiError("Too many requests for this partner. Wait and try again.", code="rate_limited",
                                   status=429, retry_after=int(wait) + 1)
                response = await handler(request, service, partner)
            except ApiError as error:
                return error_response(error)
            except ClientDisconnect:
                return Response(status_code=400)
            response.headers["Cache-Control"] = "no-store"
            return response

        return run

    return wrap


# --- FetchHashes ----------------------------------------------------------------------------------


def _whole_number(text: str | None, field: str, default: int, low: int, high: int) -> int:
    if text is None or text == "":
        return default
    # The length first: int() of over 4300 digits raises (Python's limit), of fewer is cheap.
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(high)) or not low <= int(text) <= high:
        raise _bad(field, f"{field} must be a whole number from {low} to {high}, got {text[:40]!r}")
    return int(text)


def _signal_types(text: str | None) -> tuple[str, ...]:
    if text is None or text == "":
        return exchange.DEFAULT_TYPES
    types = []
    for name in text.split(","):
        name = name.strip()
        if name not in exchange.WIRE_NAMES:
            raise _bad("signalTypes", f"unknown signal type {name[:40]!r} in signalTypes; known: "
                       + ", ".join(exchange.WIRE_NAMES))
        types.append(exchange.WIRE_NAMES[name])
    return tuple(dict.fromkeys(types))


@partner_endpoint("FetchHashes")
async def fetch_hashes(request: Request, service: PartnerService, partner: Partner) -> Response:
    params = request.query_params
    for name in params:
        if name not in FETCH_PARAMETERS:
            raise _bad(name, f"unknown parameter {name[:40]!r}; FetchHashes takes " + ", ".join(FETCH_PARAMETERS))
    start = _whole_number(params.get("startTimestamp"), "startTimestamp", 0, 0, _MAX_TIMESTAMP)
    size = _whole_number(params.get("pageSize"), "pageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    types = _signal_types(params.get("signalTypes"))
    mask = exchange.type_mask(types)
    token = params.get("nextPageToken") or None
    if token:
        after_seq, timestamp = service.read_token(token, partner.id, mask)
        key = PageKey(partner.id, after_seq, timestamp, mask, size)
        rendered = await service.prefetch.take(key) or await _render_page(service, key, types)
    else:
        rendered = await _render_page(service, PageKey(partner.id, None, start, mask, size), types)
    following = rendered.next
    if following is not None:  # read it while the partner parses this one (server/page_prefetch.py)
        service.prefetch.start(following, partial(_render_page, service, following, types))
    return Response(rendered.body, media_type="application/json")


async def _render_page(service: PartnerService, key: PageKey, types: tuple[str, ...]) -> RenderedPage:
    """The page `key` names (with no after_seq: the first page changed at or after its timestamp)."""

    def read(conn: Connection) -> exchange.Page:
        if conn.dialect.name == "postgresql":
            # All of the page's reads in one snapshot: records, holders and feedback agree.
            conn.execution_options(isolation_level="REPEATABLE READ")
        after = exchange.start_position(conn, key.timestamp) if key.after_seq is None else key.after_seq
        return exchange.read_page(conn, partner_id=key.partner_id, after_seq=after, types=types, size=key.size,
                                  max_bytes=MAX_PAGE_BYTES, pseudonym_key=service.pseudonym_key)

    page = await service.database.read(read)
    # A checkpoint: resuming with startTimestamp=nextSetTimestamp (at or after, inclusive) may
    # repeat this page's last second, and misses nothing.
    next_set = page.last_modified if page.last_modified is not None else key.timestamp
    body = JSONResponse({
        "count": len(page.records),
        "nextPageToken": service.make_token(key.partner_id, page.after_seq, next_set, key.type_mask),
        "nextSetTimestamp": next_set,
        "hasMoreRecords": page.has_more,
        "hashRecords": page.records,
    }).body
    following = PageKey(key.partner_id, page.after_seq, next_set, key.type_mask, key.size) if page.has_more else None
    return RenderedPage(bytes(body), following)


# --- request bodies -------------------------------------------------------------------------------


def _items(body: Any, list_field: str) -> list[Any]:
    obj = json_object(body, "", ("count", list_field), (list_field,))
    items = obj[list_field]
    if not isinstance(items, list) or not items:
        raise InvalidField(f"{list_field} must be a non-empty list", field=list_field)
    if len(items) > MAX_ITEMS:
        raise InvalidField(f"at most {MAX_ITEMS} items per request, got {len(items)}", field=list_field)
    count = obj.get("count")
    if count is not None and (isinstance(count, bool) or count != len(items)):
        raise InvalidField(f"count must equal the number of {list_field} ({len(items)})", field="count")
    return items


def _feedback(obj: dict[str, Any], field: str) -> exchange.FeedbackInput:
    value = obj.get("feedbackValue")
    if value not in exchange.FEEDBACK_VALUES:
        raise InvalidField("feedbackValue must be one of " + ", ".join(exchange.FEEDBACK_VALUES),
                           field=f"{field}.feedbackValue")
    tags = obj.get("tags", [])
    if not isinstance(tags, list) or len(tags) > MAX_TAGS:
        raise InvalidField(f"tags must be a list of at most {MAX_TAGS} strings", field=f"{field}.tags")
    for number, tag in enumerate(tags):
        if (not isinstance(tag, str) or not 1 <= len(tag) <= MAX_TAG_LENGTH
                or any(unicodedata.category(ch).startswith("C") for ch in tag)):
            raise InvalidField(f"a tag is 1 to {MAX_TAG_LENGTH} printable characters",
                               field=f"{field}.tags[{number}]")
    return exchange.FeedbackInput(value, tuple(tags))


def _signal_type(value: Any, field: str) -> str:
    # python-threatexchange's submit_hashes sends str(StopNCIISignalType.ImagePDQ), which is
    # "StopNCIISignalType.ImagePDQ" on Python 3.11+: that client's spelling is accepted too.
    if isinstance(value, str) and value.startswith("StopNCIISignalType."):
        value = value[len("StopNCIISignalType."):]
    if not isinstance(value, str) or value not in exchange.WIRE_NAMES:
        raise InvalidField("signalType must be one of " + ", ".join(exchange.WIRE_NAMES), field=field)
    return exchange.WIRE_NAMES[value]


def _candidates(value: Any, field: str, only: str | None) -> list[exchange.Key]:
    """The (type, normalised value) pairs a feedback's hashValue can mean: the wire's feedback
    names no type, and each type's format is distinct (64 hex PDQ, 32 hex MD5, vPDQ JSON)."""
    if not isinstance(value, str):
        raise InvalidField("hashValue must be a string", field=field)
    longest = max(pyhash.SIGNAL_TYPES.values(), key=lambda entry: entry.max_length)
    if len(value) > longest.max_length:  # refused before any type's parser reads it
        raise InvalidField(f"hashValue is at most {longest.max_length} characters (the longest a {longest.name} "
                           f"value may be), got {len(value)}", field=field)
    keys = []
    for name, entry in pyhash.SIGNAL_TYPES.items():
        if only is not None and name != only:
            continue
        try:
            keys.append((name, entry.validate(value)))
        except pyhash.InvalidHashError:
            continue
    if not keys:
        raise InvalidField("hashValue is not a hash of a known type (ImagePDQ: 64 hex digits, VideoMD5: "
                           "32 hex digits, vpdq: a vPDQ signal)", field=field)
    return keys


@partner_endpoint("SubmitFeedback")
async def submit_feedback(request: Request, service: PartnerService, partner: Partner) -> Response:
    items = _items(await read_json(request), "hashFeedbacks")
    parsed = []
    for index, item in enumerate(items):
        field = f"hashFeedbacks[{index}]"
        obj = json_object(item, field, ("hashValue", "feedbackValue", "tags", "signalType"),
                          ("hashValue", "feedbackValue"))
        only = _signal_type(obj["signalType"], f"{field}.signalType") if "signalType" in obj else None
        parsed.append((_candidates(obj["hashValue"], f"{field}.hashValue", only), _feedback(obj, field)))
    try:
        updated = await service.database.write(
            partial(exchange.submit_feedback, partner_id=partner.id, moment=datetime.now(timezone.utc), items=parsed))
    except exchange.UnknownHash as unknown:
        raise InvalidField("no hash record has this hashValue (FetchHashes lists them); nothing was stored",
                           field=f"hashFeedbacks[{unknown.index}].hashValue", code="unknown_hash") from None
    return JSONResponse({"count": len(parsed), "recordsUpdated": updated})


@partner_endpoint("SubmitHashes")
async def submit_hashes(request: Request, service: PartnerService, partner: Partner) -> Response:
    items = _items(await read_json(request), "hashRecords")
    parsed = []
    for index, item in enumerate(items):
        field = f"hashRecords[{index}]"
        obj = json_object(item, field, ("signalType", "hashValue", "CSPFeedbacks", "lastModtimestamp"),
                          ("signalType", "hashValue"))
        name = _signal_type(obj["signalType"], f"{field}.signalType")
        if not isinstance(obj["hashValue"], str):
            raise InvalidField("hashValue must be a string", field=f"{field}.hashValue")
        try:
            value = pyhash.signal_type(name).validate(obj["hashValue"])
        except pyhash.InvalidHashError as error:
            raise InvalidField(str(error), field=f"{field}.hashValue") from None
        opinions = obj.get("CSPFeedbacks", [])
        if not isinstance(opinions, list) or len(opinions) > 1:
            raise InvalidField("CSPFeedbacks must be a list of at most one feedback (yours)",
                               field=f"{field}.CSPFeedbacks")
        given = exchange.FeedbackInput("Blocked", ())  # found to be NCII, unless it says otherwise
        if opinions:
            where = f"{field}.CSPFeedbacks[0]"
            # `source` is accepted and ignored: the source is always the calling partner's name.
            given = _feedback(json_object(opinions[0], where, ("feedbackValue", "tags", "source"),
                                          ("feedbackValue",)), where)
        parsed.append(((name, value), given))
    count, withdrawn = await service.database.write(
        partial(exchange.submit_hashes, partner_id=partner.id, moment=datetime.now(timezone.utc), items=parsed))
    answer: dict[str, Any] = {"count": count}
    if withdrawn:
        # Recorded, but a person's withdrawal stands: these records stay Withdrawn (or Deleted).
        answer["withdrawnByPerson"] = [index for index, (key, _) in enumerate(parsed) if key in withdrawn]
        answer["message"] = ("the hashRecords listed in withdrawnByPerson were withdrawn by the people who "
                             "shared them; your submission is recorded, and they stay withdrawn")
    return JSONResponse(answer)


routes = [
    Route("/FetchHashes", fetch_hashes, methods=["GET"]),
    Route("/SubmitFeedback", submit_feedback, methods=["POST"]),
    Route("/SubmitHashes", submit_hashes, methods=["POST"]),
]
mount = Mount(PREFIX, routes=routes)
