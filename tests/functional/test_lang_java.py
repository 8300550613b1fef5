"""Whole-image scans of Java archives: real Debian jars, and wars, ears and Spring Boot jars built from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.domain.models import ScanResult
from shared.scanning.analyzers.java import JarAnalyzer
from shared.scanning.scanner import ScanRequest, scan
from tests.support import images as I
from tests.support import jars as J

MiB = 1024 * 1024
Row = tuple[str, str, str, str | None, str, int | None]


def _scan(tmp_path: Path, layers: list[I.Layer]) -> ScanResult:
    layout = I.write_oci_layout(tmp_path / "img", I.image(layers))
    return scan(ScanRequest(f"oci:{layout}"), analyzers=[JarAnalyzer()])[0]


def _rows(r: ScanResult) -> list[Row]:
    return [(p.name, p.version, p.purl, p.ecosystem, p.found_in, p.layer_index) for p in r.packages]


@pytest.fixture(scope="module")
def real() -> dict[str, tuple[Path, bytes]]:
    out = {}
    for n in ("commons-lang3", "slf4j-api", "slf4j-simple"):
        path = J.real_jar(f"{n}.jar")
        out[n] = (path, path.read_bytes())
    return out


def test_jars_in_two_layers_are_attributed_to_the_layer_that_brought_them(
    tmp_path: Path, real: dict[str, tuple[Path, bytes]]
) -> None:
    lang3, api, simple = (real[n][1] for n in ("commons-lang3", "slf4j-api", "slf4j-simple"))
    (lang3_ga, lang3_v), (api_ga, api_v), (simple_ga, simple_v) = (
        J.pom_coordinates(real[n][0])[0] for n in ("commons-lang3", "slf4j-api", "slf4j-simple")
    )
    own = ("com.example", "shop", "1.4.0")
    war_v1 = J.war({"slf4j-api-1.7.32.jar": api}, own=own)
    war_v2 = J.war({"slf4j-api-1.7.32.jar": api, "commons-lang3-3.12.0.jar": lang3}, own=own)
    base = I.layer(
        [
            I.file("usr/share/java/commons-lang3.jar", lang3),
            # Debian's versioned names are symlinks: the archive is read once, under its real path.
            I.F("usr/share/java/commons-lang3-3.12.0.jar", kind="symlink", link="commons-lang3.jar"),
            I.file("srv/shop.war", war_v1),
        ]
    )
    update = I.layer([I.file("usr/share/java/slf4j-simple.jar", simple), I.file("srv/shop.war", war_v2)])
    r = _scan(tmp_path, [base, update])
    assert r.warnings == []
    assert _rows(r) == [
        ("com.example:shop", "1.4.0", "pkg:maven/com.example/shop@1.4.0", "Maven", "srv/shop.war", 0),
        (
            lang3_ga,
            lang3_v,
            "pkg:maven/org.apache.commons/commons-lang3@3.12.0",
            "Maven",
            "srv/shop.war!WEB-INF/lib/commons-lang3-3.12.0.jar",
            1,
        ),
        (
            lang3_ga,
            lang3_v,
            "pkg:maven/org.apache.commons/commons-lang3@3.12.0",
            "Maven",
            "usr/share/java/commons-lang3.jar",
            0,
        ),
        (
            api_ga,
            api_v,
            "pkg:maven/org.slf4j/slf4j-api@1.7.32",
            "Maven",
            "srv/shop.war!WEB-INF/lib/slf4j-api-1.7.32.jar",
            0,
        ),
        (simple_ga, simple_v, "pkg:maven/org.slf4j/slf4j-simple@1.7.32", "Maven", "usr/share/java/slf4j-simple.jar", 1),
    ]
    assert r.analyzers == {"jar": 1}


def test_ear_spring_boot_bare_and_hostile_archives(tmp_path: Path, real: dict[str, tuple[Path, bytes]]) -> None:
    lang3, api, simple = (real[n][1] for n in ("commons-lang3", "slf4j-api", "slf4j-simple"))
    web = J.war({"slf4j-api.jar": api}, own=("com.example", "web", "1.0"))
    ear = J.ear({"web.war": web}, libs={"slf4j-simple.jar": simple})
    boot = J.spring_boot({"commons-lang3-3.12.0.jar": lang3}, own=("com.example", "orders", "2.0.0"))
    bare = J.classes_only(lang3)
    manifest_only = J.no_maven_metadata(api)
    bomb = J.zeros_member_zip("WEB-INF/lib/huge.jar", 300 * MiB, extra=[J.pom_member("com.example", "bomb", "1")])
    broken = simple[: len(simple) // 3]
    r = _scan(
        tmp_path,
        [
            I.layer(
                [
                    I.file("opt/app/app.ear", ear),
                    I.file("opt/boot/orders.jar", boot),
                    I.file("opt/lib/commons-lang3-3.12.0.jar", bare),
                    I.file("opt/lib/slf4j-api.jar", manifest_only),
                    I.file("opt/bomb.war", bomb),
                    I.file("opt/deep.jar", J.chain(4)),
                    I.file("opt/broken.jar", broken),
                    I.file("opt/plugins/notes.hpi", J.zip_bytes([J.pom_member("org.example.ci", "notes", "0.9")])),
                ]
            )
        ],
    )
    assert [(p.name, p.version, p.purl, p.found_in) for p in r.packages] == [
        ("com.example:bomb", "1", "pkg:maven/com.example/bomb@1", "opt/bomb.war"),
        ("com.example:orders", "2.0.0", "pkg:maven/com.example/orders@2.0.0", "opt/boot/orders.jar"),
        ("com.example:web", "1.0", "pkg:maven/com.example/web@1.0", "opt/app/app.ear!web.war"),
        ("commons-lang3", "3.12.0", "pkg:maven/commons-lang3@3.12.0", "opt/lib/commons-lang3-3.12.0.jar"),
        (
            "org.apache.commons:commons-lang3",
            "3.12.0",
            "pkg:maven/org.apache.commons/commons-lang3@3.12.0",
            "opt/boot/orders.jar!BOOT-INF/lib/commons-lang3-3.12.0.jar",
        ),
        ("org.example.ci:notes", "0.9", "pkg:maven/org.example.ci/notes@0.9", "opt/plugins/notes.hpi"),
        ("org.example.nest:level0", "1.0", "pkg:maven/org.example.nest/level0@1.0", "opt/deep.jar"),
        ("org.example.nest:level1", "1.0", "pkg:maven/org.example.nest/level1@1.0", "opt/deep.jar!lib/level1.jar"),
        (
            "org.example.nest:level2",
            "1.0",
            "pkg:maven/org.example.nest/level2@1.0",
            "opt/deep.jar!lib/level1.jar!lib/level2.jar",
        ),
        (
            "org.example.nest:level3",
            "1.0",
            "pkg:maven/org.example.nest/level3@1.0",
            "opt/deep.jar!lib/level1.jar!lib/level2.jar!lib/level3.jar",
        ),
        (
            "org.slf4j:slf4j-api",
            "1.7.32",
            "pkg:maven/org.slf4j/slf4j-api@1.7.32",
            "opt/app/app.ear!web.war!WEB-INF/lib/slf4j-api.jar",
        ),
        (
            "org.slf4j:slf4j-simple",
            "1.7.32",
            "pkg:maven/org.slf4j/slf4j-simple@1.7.32",
            "opt/app/app.ear!lib/slf4j-simple.jar",
        ),
        ("slf4j-api", "1.7.32", "pkg:maven/slf4j-api@1.7.32", "opt/lib/slf4j-api.jar"),
    ]
    assert sorted((w.code, w.path) for w in r.warnings) == [
        ("archive-too-deep", "opt/deep.jar!lib/level1.jar!lib/level2.jar!lib/level3.jar!lib/level4.jar"),
        ("file-too-large", "opt/bomb.war!WEB-INF/lib/huge.jar"),
        ("parse-error", "opt/broken.jar"),
    ]
    assert all(w.layer_diff_id == r.image.layers[0].diff_id for w in r.warnings)
