"""Each patch of another library's internals refuses to run on a release it was not
written against, and requirements pin the very releases the patches name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chalicelib import library_pins
from chalicelib.library_pins import UnpinnedLibraryError, installed_version, require_version
from chalicelib.store import records, wire
from devstack import launcher, moto_patches

ROOT = Path(__file__).resolve().parents[2]

GUARDS = [
    ("botocore", wire.PINNED_BOTOCORE),
    ("pynamodb", records.PINNED_PYNAMODB),
    ("moto", moto_patches.PINNED_MOTO),
    ("chalice", launcher.PINNED_CHALICE),
]


def pins() -> dict[str, str]:
    found: dict[str, str] = {}
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            m = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s#]+)", line)
            if m:
                found[m.group(1).lower()] = m.group(2)
    return found


@pytest.mark.parametrize(("distribution", "pinned"), GUARDS)
def test_requirements_pin_what_each_patch_was_written_against(
    distribution: str, pinned: str
) -> None:
    assert pins().get(distribution) == pinned
    assert installed_version(distribution) == pinned  # and that is what runs here


def test_boto3_moves_with_botocore() -> None:
    assert pins()["boto3"] == pins()["botocore"]


def test_another_version_is_refused_with_what_to_do() -> None:
    require_version("pynamodb", records.PINNED_PYNAMODB, "x.py")
    with pytest.raises(UnpinnedLibraryError) as raised:
        require_version("pynamodb", "6.1.0", "chalicelib/store/records.py", found="6.2.0")
    message = str(raised.value)
    assert "pynamodb==6.1.0" in message and "6.2.0 is installed" in message
    assert "chalicelib/store/records.py" in message
    with pytest.raises(UnpinnedLibraryError, match=r"\(not installed\)"):
        require_version("no-such-distribution-here", "1.0", "x.py")


def test_the_wire_parser_refuses_another_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.session

    session = botocore.session.get_session()
    monkeypatch.setattr(wire, "PINNED_BOTOCORE", "1.0.0")
    with pytest.raises(UnpinnedLibraryError, match=re.escape("botocore==1.0.0")):
        wire.use_wire_parser(session)
    assert not isinstance(session.get_component("response_parser_factory"), wire.WireParserFactory)


def test_configuring_records_refuses_another_pynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    table_before = records.DatasetRecord.Meta.table_name
    monkeypatch.setattr(records, "PINNED_PYNAMODB", "5.0.0")
    with pytest.raises(UnpinnedLibraryError, match=re.escape("pynamodb==5.0.0")):
        records.configure_records(lambda name: f"other-{name}", "us-east-1", None)
    assert records.DatasetRecord.Meta.table_name == table_before  # nothing half-configured


def test_the_moto_patches_refuse_another_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    moto_patches.require_pinned_moto()
    with pytest.raises(UnpinnedLibraryError, match=re.escape(f"moto=={moto_patches.PINNED_MOTO}")):
        moto_patches.require_pinned_moto("5.3.0")
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.transact_write_items
    monkeypatch.setattr(moto_patches, "_installed", False)
    monkeypatch.setattr(moto_patches, "PINNED_MOTO", "4.0.0")
    with pytest.raises(UnpinnedLibraryError, match=re.escape("moto==4.0.0")):
        moto_patches.install()
    assert DynamoDBBackend.transact_write_items is original  # nothing patched


def test_the_launcher_refuses_another_moto_or_chalice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto_patches, "PINNED_MOTO", "4.0.0")
    with pytest.raises(UnpinnedLibraryError, match=re.escape("moto==4.0.0")):
        launcher.TrackingMotoServer("127.0.0.1", 0)
    monkeypatch.setattr(launcher, "PINNED_CHALICE", "1.0.0")

    class App:
        pass

    with pytest.raises(UnpinnedLibraryError, match=re.escape("chalice==1.0.0")):
        launcher.thread_local_requests(App())


def test_the_guard_reads_installed_metadata() -> None:
    from importlib.metadata import version

    assert library_pins.installed_version("moto") == version("moto")
