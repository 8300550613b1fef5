"""Parsers of OS identification and OS package databases, on real and hand-written files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from shared.scanning.parsers.apk import parse_installed
from shared.scanning.parsers.dpkg import parse_status
from shared.scanning.parsers.osrelease import (
    parse_alpine_release,
    parse_debian_version,
    parse_os_release,
    parse_redhat_release,
)
from tests.conftest import require_tool

DATA = Path(__file__).resolve().parent.parent.parent / "data"


def test_dpkg_status_of_this_machine_matches_dpkg_query(tmp_path: Path) -> None:
    require_tool("dpkg-query", "Debian's dpkg")
    admin = tmp_path / "admin"
    admin.mkdir()
    status = Path("/var/lib/dpkg/status").read_bytes()
    (admin / "status").write_bytes(status)
    out = subprocess.run(
        [
            "dpkg-query",
            f"--admindir={admin}",
            "-W",
            "-f",
            "${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\t${db:Status-Status}\n",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    expected = sorted(
        tuple(line.split("\t")[:5])
        for line in out.splitlines()
        if line.split("\t")[5] not in ("not-installed", "config-files")
    )
    got = sorted((p.name, p.version, p.arch or "", p.source_name, p.source_version) for p in parse_status(status, "s"))
    assert got == expected
    assert len(got) > 50


def test_dpkg_source_forms_epoch_and_states() -> None:
    status = b"""Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl
Version: 3.0.11-1~deb12u2

Package: libfoo1
Status: install ok installed
Architecture: amd64
Source: foo (1:2.0-1)
Version: 1:2.0-1+b1
Description: a binNMU: the source version differs
 continuation line

Package: bash
Status: install ok installed
Architecture: amd64
Version: 5.2.15-2+b2

Package: removed-but-configured
Status: deinstall ok config-files
Version: 1.0-1

Package: purged
Status: purge ok not-installed
Version: 1.0-1
"""
    pkgs = {p.name: p for p in parse_status(status, "var/lib/dpkg/status")}
    assert sorted(pkgs) == ["bash", "libfoo1", "libssl3"]
    assert (pkgs["libssl3"].source_name, pkgs["libssl3"].source_version) == ("openssl", "3.0.11-1~deb12u2")
    assert (pkgs["libfoo1"].source_name, pkgs["libfoo1"].source_version) == ("foo", "1:2.0-1")
    assert pkgs["libfoo1"].epoch == 1
    assert (pkgs["bash"].source_name, pkgs["bash"].source_version, pkgs["bash"].epoch) == (
        "bash",
        "5.2.15-2+b2",
        None,
    )


def test_dpkg_distroless_stanza_without_status() -> None:
    stanza = b"Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n"
    assert [p.name for p in parse_status(stanza, "var/lib/dpkg/status.d/tzdata", require_status=False)] == ["tzdata"]
    assert parse_status(stanza, "var/lib/dpkg/status") == []


def test_apk_installed_hand_written() -> None:
    # Hand-written to apk's documented installed-database format (no apk tool on this machine).
    data = (DATA / "apk-installed").read_bytes()
    pkgs = parse_installed(data, "lib/apk/db/installed")
    assert [(p.name, p.version, p.arch, p.source_name, p.licenses) for p in pkgs] == [
        ("musl", "1.2.4_git20230717-r4", "x86_64", "musl", ["MIT"]),
        ("busybox", "1.36.1-r15", "x86_64", "busybox", ["GPL-2.0-only"]),
        ("libcrypto3", "3.1.4-r5", "x86_64", "openssl", ["Apache-2.0"]),
        ("libssl3", "3.1.4-r5", "x86_64", "openssl", ["Apache-2.0"]),
    ]


@pytest.mark.parametrize(
    ("text", "family", "version", "distroless"),
    [
        (
            b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
            "debian",
            "12",
            False,
        ),
        (b'NAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\n', "ubuntu", "22.04", False),
        (b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\n', "alpine", "3.19.1", False),
        (b'NAME="Red Hat Enterprise Linux"\nVERSION_ID="9.3"\nID="rhel"\n', "rhel", "9.3", False),
        (b'PRETTY_NAME="Distroless"\nNAME="Debian GNU/Linux"\nID="debian"\nVERSION_ID="12"\n', "debian", "12", True),
        (b'NAME="Amazon Linux"\nVERSION="2"\nID="amzn"\nVERSION_ID="2"\n', "amzn", "2", False),
        (b"# comment\nID='opensuse'\nVERSION_ID='15.5'\n", "opensuse-leap", "15.5", False),
    ],
)
def test_os_release(text: bytes, family: str, version: str, distroless: bool) -> None:
    info = parse_os_release(text, "etc/os-release")
    assert info is not None
    assert (info.family, info.version_id, info.distroless) == (family, version, distroless)


def test_os_release_without_id_is_not_an_identification() -> None:
    assert parse_os_release(b"NAME=thing\n", "etc/os-release") is None


def test_release_files() -> None:
    assert parse_alpine_release(b"3.19.1\n", "etc/alpine-release").version_id == "3.19.1"  # type: ignore[union-attr]
    deb = parse_debian_version(b"12.5\n", "etc/debian_version")
    assert deb is not None and (deb.family, deb.version_id) == ("debian", "12.5")
    sid = parse_debian_version(b"trixie/sid\n", "etc/debian_version")
    assert sid is not None and sid.version_id == "" and sid.codename == "trixie/sid"
    for text, family, version in [
        (b"CentOS Linux release 7.9.2009 (Core)\n", "centos", "7.9.2009"),
        (b"Red Hat Enterprise Linux release 8.9 (Ootpa)\n", "rhel", "8.9"),
        (b"Amazon Linux release 2 (Karoo)\n", "amzn", "2"),
        (b"Rocky Linux release 9.3 (Blue Onyx)\n", "rocky", "9.3"),
    ]:
        info = parse_redhat_release(text, "etc/redhat-release")
        assert info is not None and (info.family, info.version_id) == (family, version)
    assert parse_redhat_release(b"Something else\n", "etc/redhat-release") is None
