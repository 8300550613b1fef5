"""Whole-image scans of rpm-based images: real rpmdbs built with rpmbuild and rpm, in each database format."""

from __future__ import annotations

from pathlib import Path

import pytest
from packageurl import PackageURL

from shared.scanning.scanner import ScanRequest, scan
from tests.conftest import require_module, require_tool
from tests.support import images as I
from tests.support import rpmdb


@pytest.fixture(scope="module")
def real_rpmdb(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, ...]]]:
    require_tool("rpmbuild", "apt-get install rpm")
    work = tmp_path_factory.mktemp("rpm")
    rpms = rpmdb.build_rpms(work)
    db = rpmdb.install_sqlite_rpmdb(work / "db", rpms)
    return db, [row for row in rpmdb.rpm_query(work / "db") if row[0] != "gpg-pubkey"]


def _scan(tmp_path: Path, files: list[I.F]) -> list[tuple[str, str, str | None, str | None, str, str | None]]:
    layout = I.write_oci_layout(tmp_path / "img", I.image([I.layer(files)]))
    r = scan(ScanRequest(f"oci:{layout}"))[0]
    assert r.warnings == []
    return [(p.name, p.purl, p.ecosystem, p.source_name, p.version, p.arch) for p in r.packages]


@pytest.mark.parametrize(
    ("fmt", "path", "os_release", "namespace", "ecosystem"),
    [
        ("sqlite", "var/lib/rpm/rpmdb.sqlite", 'ID="rhel"\nVERSION_ID="9.3"\n', "redhat", "Red Hat"),
        ("bdb", "var/lib/rpm/Packages", 'ID="amzn"\nVERSION_ID="2"\n', "amazon", "Amazon Linux:2"),
        ("ndb", "usr/lib/sysimage/rpm/Packages.db", 'ID="sles"\nVERSION_ID="15.5"\n', "suse", "SUSE"),
    ],
)
def test_rpm_image_inventories_completely(
    tmp_path: Path,
    real_rpmdb: tuple[Path, list[tuple[str, ...]]],
    fmt: str,
    path: str,
    os_release: str,
    namespace: str,
    ecosystem: str,
) -> None:
    db, expected = real_rpmdb
    blobs = rpmdb.sqlite_blobs(db)
    if fmt == "sqlite":
        data = db.read_bytes()
    elif fmt == "bdb":
        require_module("bsddb3", "BERKELEYDB_DIR=/usr pip install bsddb3")
        data = rpmdb.write_bdb(tmp_path / "Packages", blobs).read_bytes()
    else:
        data = rpmdb.write_ndb(blobs)
    got = _scan(tmp_path, [I.file("etc/os-release", os_release), I.file(path, data)])
    want = sorted(
        (row[0], (f"{row[1]}:" if row[1] != "(none)" else "") + f"{row[2]}-{row[3]}", row[4]) for row in expected
    )
    assert sorted((name, version, arch) for name, _, _, _, version, arch in got) == want
    for name, purl, eco, _src, _version, _arch in got:
        parsed = PackageURL.from_string(purl)
        assert (parsed.type, parsed.namespace, parsed.name) == ("rpm", namespace, name)
        assert eco == ecosystem
