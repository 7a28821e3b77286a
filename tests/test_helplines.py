"""The helpline directory (server/helplines.py, server/helplines.toml): what the shipped file
holds, and broken files refused with the entry and the field named, the server not starting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server import helplines
from server_harness import ServerStartError, StartLiveServer

SHIPPED = helplines.DEFAULT_PATH.read_text(encoding="utf-8")


def test_the_shipped_directory_has_the_sourced_turkish_lines() -> None:
    directory = helplines.load()
    turkey = directory["TR"]
    assert turkey.name == {"tr": "Türkiye", "en": "Turkey"}
    by_id = {organisation.id: organisation for organisation in turkey.organisations}
    tkdf = by_id["tkdf"]
    assert [(phone.tel, phone.display) for phone in tkdf.phones][0] == ("+902126569696", "0212 656 96 96")
    assert "TKDF" in tkdf.name["tr"] and "TKDF" in tkdf.name["en"]
    assert [phone.tel for phone in by_id["tr-112"].phones] == ["112"]
    for organisation in turkey.organisations:
        assert organisation.sources and all(re.match(r"https?://", source) for source in organisation.sources)
        assert set(organisation.helps_with) == {"tr", "en"}


def broken(tmp_path: Path, old: str, new: str) -> Path:
    assert old in SHIPPED, old
    path = tmp_path / "helplines.toml"
    path.write_text(SHIPPED.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize("old, new, where, rule", [
    ('sources = [\n    "https://sinopism', 'nosources = [\n    "https://sinopism', "organisation tr-112",
     "unknown field 'nosources'"),
    ('{ e164 = "+902126569696", display', '{ e164 = "02126569696", display', "organisation tkdf: phones[0].e164",
     "E.164"),
    ('{ e164 = "+902126569696", display = "0212 656 96 96" }', '{ e164 = "+902126569696", display = "0212 656 96 69" }',
     "organisation tkdf: phones[0].display",
     "other digits than +902126569696"),
    ('name = { tr = "112 Acil Çağrı Merkezi", en = "112 Emergency Call Centre" }',
     'name = { tr = "112 Acil Çağrı Merkezi" }', "organisation tr-112: name", "no text in en"),
    ('id = "tr-112"', 'id = "tkdf"', "organisation tkdf", "id appears twice"),
    ('website = "https://tkdf.org.tr/"', 'website = "http://tkdf.org.tr/"', "organisation tkdf: website",
     "https://"),
    ('    "https://www.112.gov.tr/",\n]', '    "tel:112",\n]', "organisation tr-112: sources[1]", "http"),
    ('languages = ["tr"]\nwebsite = "https://www.112', 'languages = []\nwebsite = "https://www.112',
     "organisation tr-112: languages", "two-letter"),
    ('code = "TR"', 'code = "Turkey"', "country 0.code", "two-letter country code"),
    ('[[country]]\ncode', '[[country]\ncode', "", "not valid TOML"),
])
def test_a_broken_directory_is_refused_naming_the_entry_and_the_field(
        tmp_path: Path, old: str, new: str, where: str, rule: str) -> None:
    path = broken(tmp_path, old, new)
    with pytest.raises(helplines.HelplineDataError) as refused:
        helplines.load(path)
    message = str(refused.value)
    assert message.startswith(str(path)) and where in message and rule in message, message


def test_a_source_is_required_for_every_organisation(tmp_path: Path) -> None:
    path = broken(tmp_path, 'sources = [\n    "https://sinopism.saglik.gov.tr/TR-226526/acil-durumda-sadece-112.html",\n'
                            '    "https://www.112.gov.tr/",\n]', "sources = []")
    with pytest.raises(helplines.HelplineDataError, match="organisation tr-112: sources: must list at least one"):
        helplines.load(path)


def test_the_server_does_not_start_with_a_broken_directory(sqlite_database_url: str, tmp_path: Path,
                                                           live_server: StartLiveServer) -> None:
    path = broken(tmp_path, '{ e164 = "+902126569696", display = "0212 656 96 96" }',
                  '{ e164 = "+902126569696", display = "0212 656 96 69" }')
    with pytest.raises(ServerStartError) as refused:
        live_server(sqlite_database_url, env={"KALKAN_HELPLINES": str(path)})
    assert "exited with 2" in str(refused.value)
    assert "organisation tkdf: phones[0].display" in str(refused.value)
