"""The helpline directory (server/helplines.toml): organisations a person can call, by country.

Read once when the server starts; a file that breaks a rule stops it with the entry and the field
at fault (HelplineDataError), so a directory that would show a wrong number never goes live.
Every organisation names its sources: a directory for people in crisis holds only what a public
page states.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .i18n import LANGUAGES

DEFAULT_PATH = Path(__file__).resolve().parent / "helplines.toml"

_COUNTRY = re.compile(r"[A-Z]{2}")  # ISO 3166-1 alpha-2
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
E164 = re.compile(r"\+[1-9][0-9]{7,14}")
_SHORT = re.compile(r"[0-9]{3,6}")  # national short numbers such as 112
_LANGUAGE = re.compile(r"[a-z]{2}")  # ISO 639-1
_ORGANISATION_FIELDS = ("id", "name", "phones", "hours", "languages", "website", "helps_with", "sources")


class HelplineDataError(ValueError):
    """The directory file breaks a rule; the message names the file, the entry and the field."""


@dataclass(frozen=True)
class Phone:
    tel: str  # what a tel: link dials: E.164, or a national short number
    display: str  # as people write it


@dataclass(frozen=True)
class Organisation:
    id: str
    name: dict[str, str]
    phones: tuple[Phone, ...]
    hours: dict[str, str]
    languages: tuple[str, ...]
    website: str | None
    helps_with: dict[str, str]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Country:
    code: str
    name: dict[str, str]
    organisations: tuple[Organisation, ...]


class _Reader:
    """Checks one file's entries, naming each problem's place as `country TR, organisation tkdf: field`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, message: str) -> HelplineDataError:
        return HelplineDataError(f"{self.path}: {where}: {message}")

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, "must be a non-empty string")
        return value.strip()

    def per_language(self, value: Any, where: str) -> dict[str, str]:
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a table with one text per language ({', '.join(LANGUAGES)})")
        missing = [language for language in LANGUAGES if language not in value]
        if missing:
            raise self.fail(where, f"has no text in {', '.join(missing)}")
        return {language: self.text(value[language], f"{where}.{language}") for language in LANGUAGES}

    def address(self, value: Any, where: str, schemes: tuple[str, ...]) -> str:
        text = self.text(value, where)
        parts = urlsplit(text)
        if parts.scheme not in schemes or not parts.netloc:
            raise self.fail(where, f"must be an address starting {' or '.join(s + '://' for s in schemes)}")
        return text

    def phone(self, value: Any, where: str) -> Phone:
        if not isinstance(value, dict) or set(value) not in ({"e164", "display"}, {"short", "display"}):
            raise self.fail(where, "must be {e164 = \"+...\", display = \"...\"} or {short = \"112\", display = \"112\"}")
        if "e164" in value:
            tel = self.text(value["e164"], f"{where}.e164")
            if not E164.fullmatch(tel):
                raise self.fail(f"{where}.e164", "must be E.164: + and 8 to 15 digits, e.g. +902126569696")
        else:
            tel = self.text(value["short"], f"{where}.short")
            if not _SHORT.fullmatch(tel):
                raise self.fail(f"{where}.short", "must be a short number of 3 to 6 digits, e.g. 112")
        display = self.text(value["display"], f"{where}.display")
        # The shown number and the dialled one must not drift apart when someone edits one: the
        # shown digits, less a national trunk 0, end the dialled ones (0212 ... is +90 212 ...).
        shown = re.sub(r"\D", "", display).lstrip("0")
        if len(shown) < 3 or not tel.lstrip("+").endswith(shown):
            raise self.fail(f"{where}.display", f"shows other digits than {tel}")
        return Phone(tel, display)

    def organisation(self, value: Any, where: str) -> Organisation:
        if not isinstance(value, dict):
            raise self.fail(where, "must be a table")
        identifier = value.get("id")
        if not isinstance(identifier, str) or not _ID.fullmatch(identifier):
            raise self.fail(f"{where}.id", "must be 1 to 40 of a-z, 0-9 and -")
        where = f"{where.rsplit(' ', 1)[0]} {identifier}"
        unknown = sorted(set(value) - set(_ORGANISATION_FIELDS))
        if unknown:
            raise self.fail(where, f"unknown field {unknown[0]!r}; fields: {', '.join(_ORGANISATION_FIELDS)}")
        for required in ("name", "phones", "hours", "languages", "helps_with", "sources"):
            if required not in value:
                raise self.fail(where, f"{required} is required")
        phones = value["phones"]
        if not isinstance(phones, list) or not phones:
            raise self.fail(f"{where}: phones", "must be a non-empty list")
        languages = value["languages"]
        if not isinstance(languages, list) or not languages or not all(
                isinstance(code, str) and _LANGUAGE.fullmatch(code) for code in languages):
            raise self.fail(f"{where}: languages", "must be a non-empty list of two-letter codes such as \"tr\"")
        sources = value["sources"]
        if not isinstance(sources, list) or not sources:
            raise self.fail(f"{where}: sources", "must list at least one public page that states this entry")
        return Organisation(
            id=identifier,
            name=self.per_language(value["name"], f"{where}: name"),
            phones=tuple(self.phone(phone, f"{where}: phones[{i}]") for i, phone in enumerate(phones)),
            hours=self.per_language(value["hours"], f"{where}: hours"),
            languages=tuple(languages),
            website=self.address(value["website"], f"{where}: website", ("https",)) if "website" in value else None,
            helps_with=self.per_language(value["helps_with"], f"{where}: helps_with"),
            sources=tuple(self.address(source, f"{where}: sources[{i}]", ("https", "http"))
                          for i, source in enumerate(sources)),
        )

    def country(self, value: Any, where: str) -> Country:
        if not isinstance(value, dict):
            raise self.fail(where, "must be a table")
        code = value.get("code")
        if not isinstance(code, str) or not _COUNTRY.fullmatch(code):
            raise self.fail(f"{where}.code", "must be a two-letter country code such as \"TR\"")
        where = f"country {code}"
        organisations = value.get("organisation")
        if not isinstance(organisations, list) or not organisations:
            raise self.fail(where, "needs at least one [[country.organisation]]")
        read = tuple(self.organisation(entry, f"{where}, organisation {i}") for i, entry in enumerate(organisations))
        return Country(code, self.per_language(value.get("name"), f"{where}: name"), read)


def load(path: Path = DEFAULT_PATH) -> dict[str, Country]:
    """The directory by country code; HelplineDataError if the file breaks a rule."""
    reader = _Reader(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise HelplineDataError(f"{path}: cannot be read: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise HelplineDataError(f"{path}: is not valid TOML: {error}") from None
    countries = data.get("country")
    if set(data) != {"country"} or not isinstance(countries, list) or not countries:
        raise HelplineDataError(f"{path}: must hold [[country]] tables and nothing else")
    directory: dict[str, Country] = {}
    seen_ids: set[str] = set()
    for index, entry in enumerate(countries):
        country = reader.country(entry, f"country {index}")
        if country.code in directory:
            raise reader.fail(f"country {country.code}", "appears twice")
        for organisation in country.organisations:
            if organisation.id in seen_ids:
                raise reader.fail(f"country {country.code}, organisation {organisation.id}", "id appears twice")
            seen_ids.add(organisation.id)
        directory[country.code] = country
    return directory
