"""The layer engine: whiteouts, opaque directories, attribution, hostile entries, caps."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from shared.domain.models import ScanResult
from shared.scanning.errors import ImageError, LimitExceeded
from shared.scanning.scanner import ScanRequest, scan
from shared.scanning.sources import base as source_base
from shared.scanning.sources.base import ScanOptions
from shared.scanning.streams import ByteBudget, decompressed
from tests.support import images as I


@pytest.fixture(autouse=True, params=["read-ahead", "in-line"])
def layer_reading(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here runs with layers read ahead on a thread of their own and read in line: same outcomes."""
    monkeypatch.setattr(source_base, "READ_AHEAD", request.param == "read-ahead")
    monkeypatch.setattr(source_base, "cores", lambda: 2)


OS_RELEASE = I.file("etc/os-release", 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')


def stanza(name: str, version: str, source: str | None = None) -> str:
    src = f"Source: {source}\n" if source else ""
    return f"Package: {name}\nStatus: install ok installed\nArchitecture: amd64\n{src}Version: {version}\n\n"


def status(*names: str) -> I.F:
    return I.file("var/lib/dpkg/status", "".join(stanza(n, "1.0-1") for n in names))


def run(tmp_path: Path, layers: list[list[I.F]], **kw: object) -> ScanResult:
    img = I.image([I.layer(entries) for entries in layers])
    layout = I.write_oci_layout(tmp_path / "img", img)
    return scan(ScanRequest(f"oci:{layout}", **kw))[0]  # type: ignore[arg-type]


def names(r: ScanResult) -> list[str]:
    return [p.name for p in r.packages]


def test_second_layer_rewriting_status_attributes_each_package_to_its_layer(tmp_path: Path) -> None:
    r = run(tmp_path, [[OS_RELEASE, status("a", "b", "c")], [status("a", "c", "d")]])
    assert names(r) == ["a", "c", "d"]
    layer = {p.name: p.layer_index for p in r.packages}
    assert layer == {"a": 0, "c": 0, "d": 1}
    assert {p.layer_diff_id for p in r.packages} == {r.image.layers[0].diff_id, r.image.layers[1].diff_id}


def test_upgrade_in_a_later_layer_moves_attribution(tmp_path: Path) -> None:
    v1 = I.file("var/lib/dpkg/status", stanza("a", "1.0-1"))
    v2 = I.file("var/lib/dpkg/status", stanza("a", "1.0-2"))
    v3 = I.file("var/lib/dpkg/status", stanza("a", "1.0-2") + stanza("b", "2"))
    r = run(tmp_path, [[OS_RELEASE, v1], [v2], [v3]])
    assert [(p.name, p.version, p.layer_index) for p in r.packages] == [("a", "1.0-2", 1), ("b", "2", 2)]


def test_package_removed_then_readded_is_attributed_to_the_readding_layer(tmp_path: Path) -> None:
    r = run(tmp_path, [[OS_RELEASE, status("a", "b")], [status("a")], [status("a", "b")]])
    assert {p.name: p.layer_index for p in r.packages} == {"a": 0, "b": 2}


def test_whiteout_deletes_lower_layer_file(tmp_path: Path) -> None:
    r = run(tmp_path, [[OS_RELEASE, status("a")], [I.file("var/lib/dpkg/.wh.status", "")]])
    assert names(r) == []


def test_whiteout_of_a_parent_directory(tmp_path: Path) -> None:
    r = run(tmp_path, [[OS_RELEASE, status("a")], [I.file("var/lib/.wh.dpkg", "")]])
    assert names(r) == []


def test_whiteout_then_recreate_in_a_higher_layer(tmp_path: Path) -> None:
    r = run(
        tmp_path,
        [[OS_RELEASE, status("a")], [I.file("var/lib/dpkg/.wh.status", "")], [status("b")]],
    )
    assert [(p.name, p.layer_index) for p in r.packages] == [("b", 2)]


def test_whiteout_does_not_hide_a_file_of_its_own_layer(tmp_path: Path) -> None:
    r = run(tmp_path, [[OS_RELEASE, status("a")], [status("b"), I.file("var/lib/dpkg/.wh.status", "")]])
    assert names(r) == ["b"]


def test_opaque_directory_hides_everything_below_from_lower_layers(tmp_path: Path) -> None:
    distroless = [
        I.file("var/lib/dpkg/status.d/base", stanza("base-files", "12.4")),
        I.file("var/lib/dpkg/status.d/tzdata", stanza("tzdata", "2024a-0")),
    ]
    r = run(
        tmp_path,
        [
            [OS_RELEASE, *distroless],
            [
                I.file("var/lib/dpkg/status.d/.wh..wh..opq", ""),
                I.file("var/lib/dpkg/status.d/libc6", stanza("libc6", "2.36-9")),
            ],
        ],
    )
    assert [(p.name, p.layer_index) for p in r.packages] == [("libc6", 1)]


def test_os_release_symlink_to_usr_lib(tmp_path: Path) -> None:
    r = run(
        tmp_path,
        [
            [
                I.F("etc/os-release", kind="symlink", link="../usr/lib/os-release"),
                I.file("usr/lib/os-release", "ID=alpine\nVERSION_ID=3.19.1\n"),
                I.file("lib/apk/db/installed", "P:musl\nV:1.2.4-r4\nA:x86_64\no:musl\n\n"),
            ]
        ],
    )
    assert r.os is not None and (r.os.family, r.os.version_id) == ("alpine", "3.19.1")
    assert [(p.name, p.ecosystem, p.purl) for p in r.packages] == [
        ("musl", "Alpine:v3.19", "pkg:apk/alpine/musl@1.2.4-r4?arch=x86_64&distro=alpine-3.19.1")
    ]


def test_distroless_status_d_is_recognised(tmp_path: Path) -> None:
    r = run(
        tmp_path,
        [
            [
                OS_RELEASE,
                I.file(
                    "var/lib/dpkg/status.d/tzdata", "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n"
                ),
                I.file("var/lib/dpkg/status.d/tzdata.md5sums", "abc  usr/share/zoneinfo/UTC\n"),
            ]
        ],
    )
    assert r.os is not None and r.os.distroless
    assert [(p.name, p.found_in) for p in r.packages] == [("tzdata", "var/lib/dpkg/status.d/tzdata")]


def test_escaping_entries_warn_and_the_scan_goes_on(tmp_path: Path) -> None:
    # A hostile layer: a ../ entry, an absolute entry, a link climbing out; the real
    # package database beside them must still be inventoried.
    hostile = [
        I.file("../../etc/evil", "x"),
        I.F("etc/passwd-link", kind="symlink", link="../../../../../../etc/passwd"),
        I.F("etc/hard", kind="hardlink", link="../../outside"),
        OS_RELEASE,
        status("a"),
    ]
    r = run(tmp_path, [hostile, [I.file("/var/lib/dpkg/status", stanza("a", "1.0-1") + stanza("b", "2"))]])
    assert names(r) == ["a", "b"], "the absolute-path rewrite of the status file is still read"
    codes = sorted((w.code, w.path) for w in r.warnings)
    assert ("path-escape", "../../etc/evil") in codes
    assert ("link-escape", "etc/passwd-link") in codes
    assert ("link-escape", "etc/hard") in codes
    assert ("absolute-path", "/var/lib/dpkg/status") in codes
    escape = next(w for w in r.warnings if w.code == "path-escape")
    assert escape.layer_diff_id == r.image.layers[0].diff_id
    assert r.image.layers[0].diff_id in escape.message or "layer 0" in escape.message


def test_hardlink_to_an_analysed_file_in_the_same_layer(tmp_path: Path) -> None:
    r = run(
        tmp_path,
        [
            [I.file("etc/os-release", "ID=debian\nVERSION_ID=11\n"), status("a")],
            [
                I.file("var/lib/dpkg/.wh.status", ""),
                I.file("usr/lib/os-release", "ID=debian\nVERSION_ID=12\n"),
                I.F("etc/os-release", kind="hardlink", link="usr/lib/os-release"),
            ],
        ],
    )
    assert names(r) == []
    # etc/os-release (priority over usr/lib) now is the hard link's content, not layer 0's file
    assert r.os is not None and r.os.version_id == "12"
    assert not [w for w in r.warnings if w.code == "hardlink-unresolved"]


def test_oversized_database_file_is_skipped_with_a_warning(tmp_path: Path) -> None:
    big = I.file("etc/os-release", "ID=debian\n" + "#" * (70 * 1024))
    r = run(tmp_path, [[big, status("a")]])
    assert r.os is None
    assert [w.code for w in r.warnings] == ["file-too-large"]
    assert names(r) == ["a"]


def test_decompression_budget_stops_bombs(tmp_path: Path) -> None:
    bomb = I.file("zeros", b"\0" * (4 * 1024 * 1024))
    with pytest.raises(LimitExceeded, match="decompressed bytes"):
        run(tmp_path, [[bomb]], options=ScanOptions(max_image_bytes=1024 * 1024))


def test_corrupt_gzip_names_the_layer(tmp_path: Path) -> None:
    lay = I.layer([status("a")])
    lay.blob = lay.blob[:10] + b"\xff" * 20 + lay.blob[30:]
    layout = I.write_oci_layout(tmp_path / "img", I.image([lay]))
    with pytest.raises(ImageError, match=r"layer 0 .*(digest mismatch|corrupt gzip)"):
        scan(ScanRequest(f"oci:{layout}"))


def test_zstd_and_uncompressed_layers(tmp_path: Path) -> None:
    img = I.image([I.layer([OS_RELEASE, status("a")], "zstd"), I.layer([status("a", "b")], "none")])
    layout = I.write_oci_layout(tmp_path / "img", img)
    r = scan(ScanRequest(f"oci:{layout}"))[0]
    assert [(p.name, p.layer_index) for p in r.packages] == [("a", 0), ("b", 1)]


def test_decompressed_reader_handles_truncation_and_concatenation() -> None:
    import gzip

    data = b"abc" * 100000
    two = gzip.compress(data) + gzip.compress(data)
    assert decompressed(io.BytesIO(two), "l", "img").read() == data + data
    with pytest.raises(ImageError, match="truncated"):
        decompressed(io.BytesIO(gzip.compress(data)[:-30]), "l", "img").read()
    budget = ByteBudget(1000, "img")
    with pytest.raises(LimitExceeded):
        decompressed(io.BytesIO(gzip.compress(data)), "l", "img", budget).read()


def test_hardlink_to_a_file_no_analyzer_read_warns(tmp_path: Path) -> None:
    r = run(
        tmp_path,
        [
            [
                OS_RELEASE,
                I.file("var/lib/dpkg/status-old", stanza("a", "1")),
                I.F("var/lib/dpkg/status", kind="hardlink", link="var/lib/dpkg/status-old"),
            ]
        ],
    )
    assert names(r) == []
    assert [(w.code, w.path) for w in r.warnings] == [("hardlink-unresolved", "var/lib/dpkg/status")]
