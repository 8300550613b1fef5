"""Whole scans through each local source, the acceptance case on this machine's dpkg database, and goldens."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from shared.domain.schema import SCHEMA_PATH
from shared.domain.schema import main as schema_main
from shared.report import cyclonedx, jsonout
from shared.scanning.manifest import Platform
from shared.scanning.scanner import ScanRequest, scan
from shared.scanning.sources.base import ScanOptions
from tests.conftest import require_tool
from tests.support import images as I

DATA = Path(__file__).resolve().parent.parent / "data"
GOLDEN = Path(__file__).resolve().parent.parent / "golden"
FIXED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
DEBIAN_OS = I.file(
    "etc/os-release",
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
    'VERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n',
)


def dpkg_query(status: bytes, tmp: Path) -> list[tuple[str, ...]]:
    admin = tmp / "dpkg-admin"
    admin.mkdir(exist_ok=True)
    (admin / "status").write_bytes(status)
    fmt = "${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\t${db:Status-Status}\n"
    out = subprocess.run(
        ["dpkg-query", f"--admindir={admin}", "-W", "-f", fmt], check=True, capture_output=True, text=True
    ).stdout
    rows = [tuple(line.split("\t")) for line in out.splitlines()]
    return sorted(r[:5] for r in rows if r[5] not in ("not-installed", "config-files"))


def machine_status_image() -> tuple[I.Image, bytes]:
    """Two layers from this machine's dpkg database; the second rewrites the status file."""
    final = Path("/var/lib/dpkg/status").read_bytes()
    stanzas = final.decode().split("\n\n")
    first = "\n\n".join(stanzas[::2]).encode()  # an older state: every other package
    return I.image(
        [
            I.layer([DEBIAN_OS, I.file("var/lib/dpkg/status", first)]),
            I.layer([I.file("var/lib/dpkg/status", final)]),
        ]
    ), final


def test_machine_dpkg_two_layers_match_dpkg_query(tmp_path: Path) -> None:
    require_tool("dpkg-query", "Debian's dpkg")
    img, final = machine_status_image()
    layout = I.write_oci_layout(tmp_path / "img", img)
    r = scan(ScanRequest(f"oci:{layout}"))[0]
    got = sorted((p.name, p.version, p.arch or "", p.source_name or "", p.source_version or "") for p in r.packages)
    assert got == dpkg_query(final, tmp_path)
    older = I.write_oci_layout(tmp_path / "one", I.image([img.layers[0]]))
    first_names = {p.name for p in scan(ScanRequest(f"oci:{older}"))[0].packages}
    for p in r.packages:
        assert p.layer_index == (0 if p.name in first_names else 1), p.name
        assert p.ecosystem == "Debian:12"
        purl = PackageURL.from_string(p.purl)
        assert (purl.type, purl.namespace, purl.name, purl.qualifiers["distro"]) == (
            "deb",
            "debian",
            p.name,
            "debian-12",
        )


@pytest.mark.parametrize("oci_style", [False, True], ids=["legacy", "oci-style"])
def test_docker_archive_matches_oci_layout(tmp_path: Path, oci_style: bool) -> None:
    img, _ = machine_status_image()
    layout = I.write_oci_layout(tmp_path / "img", img)
    archive = I.write_docker_archive(tmp_path / "img.tar", img, oci_style=oci_style)
    a = scan(ScanRequest(f"oci:{layout}"))[0]
    b = scan(ScanRequest(f"docker-archive:{archive}"))[0]
    assert b.image.source == "docker-archive" and b.image.tag == "sample:latest"
    assert [p.model_dump() for p in a.packages] == [p.model_dump() for p in b.packages]
    assert [lay.diff_id for lay in a.image.layers] == [lay.diff_id for lay in b.image.layers]


def test_dir_source_reads_a_root_filesystem(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "usr/lib").mkdir(parents=True)
    (root / "usr/lib/os-release").write_text("ID=alpine\nVERSION_ID=3.19.1\n")
    (root / "etc/os-release").symlink_to("../usr/lib/os-release")
    (root / "lib/apk/db").mkdir(parents=True)
    (root / "lib/apk/db/installed").write_bytes((DATA / "apk-installed").read_bytes())
    (root / "etc/escape").symlink_to("../../../../../../../../etc/passwd")
    r = scan(ScanRequest(f"dir:{root}"))[0]
    assert r.os is not None and r.os.family == "alpine"
    assert [p.name for p in r.packages] == ["busybox", "libcrypto3", "libssl3", "musl"]
    assert {p.layer_index for p in r.packages} == {0}
    assert [w.code for w in r.warnings] == ["link-escape"]


def test_multi_platform_index(tmp_path: Path) -> None:
    amd = I.image(
        [
            I.layer(
                [
                    DEBIAN_OS,
                    I.file(
                        "var/lib/dpkg/status",
                        "Package: amd\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\n",
                    ),
                ]
            )
        ]
    )
    arm = I.image(
        [
            I.layer(
                [
                    DEBIAN_OS,
                    I.file(
                        "var/lib/dpkg/status",
                        "Package: arm\nStatus: install ok installed\nArchitecture: arm64\nVersion: 1\n\n",
                    ),
                ]
            )
        ],
        arch="arm64",
        variant="v8",
    )
    for flavour in ("oci", "docker"):
        layout = I.write_oci_layout(
            tmp_path / flavour, I.index([(amd, "linux/amd64"), (arm, "linux/arm64/v8")], flavour=flavour)
        )
        ref = f"oci:{layout}"
        default = scan(ScanRequest(ref))
        assert [(r.image.platform, r.packages[0].name) for r in default] == [("linux/amd64", "amd")]
        assert default[0].image.index_digest is not None and default[0].image.digest == amd.digest
        arm_only = scan(ScanRequest(ref, options=ScanOptions(platform=Platform.parse("linux/arm64/v8"))))
        assert [r.packages[0].name for r in arm_only] == ["arm"]
        every = scan(ScanRequest(ref, options=ScanOptions(all_platforms=True)))
        assert sorted(r.packages[0].name for r in every) == ["amd", "arm"]
    single = I.write_oci_layout(tmp_path / "single", I.index([(arm, "linux/arm64/v8")]))
    assert [r.packages[0].name for r in scan(ScanRequest(f"oci:{single}"))] == ["arm"]


def test_docker_v2_manifest(tmp_path: Path) -> None:
    img = I.image(
        [
            I.layer(
                [DEBIAN_OS, I.file("var/lib/dpkg/status", (DATA / "debian12-status").read_bytes())], flavour="docker"
            )
        ],
        flavour="docker",
    )
    r = scan(ScanRequest(f"oci:{I.write_oci_layout(tmp_path / 'img', img)}"))[0]
    assert r.image.manifest_media_type == "application/vnd.docker.distribution.manifest.v2+json"
    assert len(r.packages) == 7


# ---- goldens ------------------------------------------------------------------


def golden_images() -> dict[str, I.Image]:
    deb_status = (DATA / "debian12-status").read_bytes()
    older = b"\n\n".join(deb_status.split(b"\n\n")[:4]) + b"\n"
    apk = (DATA / "apk-installed").read_bytes()
    return {
        "debian-two-layers": I.image(
            [
                I.layer([DEBIAN_OS, I.file("var/lib/dpkg/status", older)]),
                I.layer([I.file("var/lib/dpkg/status", deb_status), I.file("etc/debian_version", "12.11\n")]),
            ]
        ),
        "alpine": I.image(
            [
                I.layer(
                    [
                        I.file("etc/alpine-release", "3.19.1\n"),
                        I.file(
                            "etc/os-release",
                            'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n',
                        ),
                        I.file("lib/apk/db/installed", apk),
                    ]
                )
            ],
            flavour="oci",
        ),
        "distroless": I.image(
            [
                I.layer(
                    [
                        I.file(
                            "etc/os-release",
                            'PRETTY_NAME="Distroless"\nNAME="Debian GNU/Linux"\nID="debian"\nVERSION_ID="12"\n',
                        ),
                        I.file(
                            "var/lib/dpkg/status.d/base",
                            "Package: base-files\nVersion: 12.4+deb12u11\nArchitecture: amd64\n",
                        ),
                        I.file(
                            "var/lib/dpkg/status.d/libc6",
                            "Package: libc6\nVersion: 2.36-9+deb12u10\nArchitecture: amd64\nSource: glibc\n",
                        ),
                        I.file("var/lib/dpkg/status.d/libc6.md5sums", "00  lib/x86_64-linux-gnu/libc.so.6\n"),
                    ]
                )
            ]
        ),
    }


@pytest.mark.parametrize("name", sorted(golden_images()))
def test_golden_json(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    I.write_oci_layout(Path(name), golden_images()[name])
    results = scan(ScanRequest(f"oci:{name}"), now=lambda: FIXED)
    text = jsonout.render(results)
    jsonschema.validate(json.loads(text), json.loads(SCHEMA_PATH.read_text()))
    golden = GOLDEN / f"{name}.json"
    if os.environ.get("HULLWATCH_UPDATE_GOLDENS") == "1":
        golden.write_text(text)
    assert text == golden.read_text(), f"{golden.name} differs: review, then HULLWATCH_UPDATE_GOLDENS=1 to refresh"


def test_json_schema_file_is_current() -> None:
    assert schema_main(["--check"]) == 0


@pytest.mark.parametrize("name", sorted(golden_images()))
def test_cyclonedx_validates_against_the_1_6_schema(name: str, tmp_path: Path) -> None:
    layout = I.write_oci_layout(tmp_path / name, golden_images()[name])
    results = scan(ScanRequest(f"oci:{layout}"), now=lambda: FIXED)
    text = cyclonedx.render(results)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    doc = json.loads(text)
    assert doc["specVersion"] == "1.6"
    purls = sorted(c["purl"] for c in doc["components"] if "purl" in c)
    assert purls == sorted(p.purl for p in results[0].packages)
