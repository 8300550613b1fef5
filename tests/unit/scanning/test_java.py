"""Java archives: real Debian jars, archives built from them at test time, and hostile ones."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest

from shared.scanning.analyzers.base import FileInput
from shared.scanning.analyzers.java import JarAnalyzer
from shared.scanning.parsers.java import (
    ArchiveLimits,
    bundle_licenses,
    coordinates_from_file_name,
    count_entries,
    manifest_identity,
    parse_archive,
    parse_manifest,
    parse_properties,
)
from tests.support import jars as J

MiB = 1024 * 1024


def got(data: bytes, path: str, limits: ArchiveLimits | None = None) -> list[tuple[str, str, str]]:
    inv = parse_archive(data, path, limits) if limits else parse_archive(data, path)
    return sorted((p.name, p.version, p.found_in) for p in inv.packages)


def codes(data: bytes, path: str, limits: ArchiveLimits | None = None) -> list[tuple[str, str | None]]:
    inv = parse_archive(data, path, limits) if limits else parse_archive(data, path)
    return [(w.code, w.path) for w in inv.warnings]


def oracle_manifest(jar: Path, key: str) -> str:
    with zipfile.ZipFile(jar) as zf:
        text = zf.read("META-INF/MANIFEST.MF").decode()
    m = re.search(rf"^{re.escape(key)}: (.*?)\r?$", text, re.MULTILINE)
    assert m, key
    return m.group(1).strip()


# -- real jars -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["commons-lang3.jar", "slf4j-api.jar", "slf4j-simple.jar"])
def test_real_jars_give_their_own_pom_properties(name: str) -> None:
    jar = J.real_jar(name)
    expected = J.pom_coordinates(jar)
    assert len(expected) == 1
    path = f"usr/share/java/{jar.name}"
    inv = parse_archive(jar.read_bytes(), path)
    assert sorted((p.name, p.version) for p in inv.packages) == expected
    assert [(p.type, p.found_in, p.licenses, p.dev, p.purl) for p in inv.packages] == [("maven", path, [], False, "")]
    assert inv.warnings == []


def test_real_commons_lang3_is_org_apache_commons() -> None:
    jar = J.real_jar("commons-lang3.jar")
    assert got(jar.read_bytes(), "x.jar") == [("org.apache.commons:commons-lang3", "3.12.0", "x.jar")]


def test_manifest_fallback_on_real_slf4j_api() -> None:
    jar = J.real_jar("slf4j-api.jar")
    stripped = J.no_maven_metadata(jar.read_bytes())
    title = oracle_manifest(jar, "Implementation-Title")
    version = oracle_manifest(jar, "Implementation-Version")
    # No Implementation-Vendor-Id: the group stays unknown, the name is the artifactId alone.
    assert got(stripped, "opt/app/slf4j-api.jar") == [(title, version, "opt/app/slf4j-api.jar")]
    assert (title, version) == ("slf4j-api", "1.7.32")


def test_manifest_fallback_on_real_commons_lang3() -> None:
    jar = J.real_jar("commons-lang3.jar")
    stripped = J.no_maven_metadata(jar.read_bytes())
    version = oracle_manifest(jar, "Implementation-Version")
    symbolic = oracle_manifest(jar, "Bundle-SymbolicName")
    # "Apache Commons Lang" is a title, not an id: the versioned file name gives the artifactId ...
    assert got(stripped, "lib/commons-lang3-3.12.0.jar") == [("commons-lang3", version, "lib/commons-lang3-3.12.0.jar")]
    # ... and without one the OSGi symbolic name does.
    assert got(stripped, "lib/commons-lang3.jar") == [(symbolic, version, "lib/commons-lang3.jar")]


def test_file_name_fallback_when_there_is_no_metadata() -> None:
    bare = J.classes_only(J.real_jar("commons-lang3.jar").read_bytes())
    assert got(bare, "app/lib/commons-lang3-3.12.0.jar") == [
        ("commons-lang3", "3.12.0", "app/lib/commons-lang3-3.12.0.jar")
    ]
    # No version anywhere: nothing to report, and nothing wrong either.
    inv = parse_archive(bare, "app/lib/app.jar")
    assert (inv.packages, inv.warnings) == ([], [])


# -- nesting ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real() -> dict[str, bytes]:
    return {n: J.real_jar(f"{n}.jar").read_bytes() for n in ("commons-lang3", "slf4j-api", "slf4j-simple")}


def test_war_with_web_inf_lib(real: dict[str, bytes]) -> None:
    war = J.war(
        {"commons-lang3-3.12.0.jar": real["commons-lang3"], "slf4j-api-1.7.32.jar": real["slf4j-api"]},
        own=("com.example", "shop", "2.1.0"),
    )
    assert got(war, "srv/shop.war") == [
        ("com.example:shop", "2.1.0", "srv/shop.war"),
        ("org.apache.commons:commons-lang3", "3.12.0", "srv/shop.war!WEB-INF/lib/commons-lang3-3.12.0.jar"),
        ("org.slf4j:slf4j-api", "1.7.32", "srv/shop.war!WEB-INF/lib/slf4j-api-1.7.32.jar"),
    ]


def test_ear_holding_a_war_is_read_two_levels_down(real: dict[str, bytes]) -> None:
    war = J.war({"slf4j-api.jar": real["slf4j-api"]}, own=("com.example", "web", "1.0"))
    ear = J.ear({"web.war": war}, libs={"slf4j-simple.jar": real["slf4j-simple"]})
    assert got(ear, "opt/app.ear") == [
        ("com.example:web", "1.0", "opt/app.ear!web.war"),
        ("org.slf4j:slf4j-api", "1.7.32", "opt/app.ear!web.war!WEB-INF/lib/slf4j-api.jar"),
        ("org.slf4j:slf4j-simple", "1.7.32", "opt/app.ear!lib/slf4j-simple.jar"),
    ]
    assert codes(ear, "opt/app.ear") == []


def test_spring_boot_jar(real: dict[str, bytes]) -> None:
    boot = J.spring_boot(
        {"commons-lang3-3.12.0.jar": real["commons-lang3"], "slf4j-api-1.7.32.jar": real["slf4j-api"]},
        own=("com.example", "orders", "0.3.1-SNAPSHOT"),
    )
    assert got(boot, "app.jar") == [
        ("com.example:orders", "0.3.1-SNAPSHOT", "app.jar"),
        ("org.apache.commons:commons-lang3", "3.12.0", "app.jar!BOOT-INF/lib/commons-lang3-3.12.0.jar"),
        ("org.slf4j:slf4j-api", "1.7.32", "app.jar!BOOT-INF/lib/slf4j-api-1.7.32.jar"),
    ]


def test_shaded_jar_yields_each_pom_properties_once(real: dict[str, bytes]) -> None:
    uber = J.shaded(real["commons-lang3"], real["slf4j-api"])
    assert got(uber, "uber-1.0.jar") == [
        ("org.apache.commons:commons-lang3", "3.12.0", "uber-1.0.jar"),
        ("org.slf4j:slf4j-api", "1.7.32", "uber-1.0.jar"),
    ]


def test_shaded_jar_that_lost_its_own_pom_is_named_by_its_manifest() -> None:
    jar = J.zip_bytes(
        [
            J.manifest(Bundle_SymbolicName="com.example.tool", Bundle_Version="4.2.3", Bundle_License="Apache-2.0"),
            J.pom_member("cglib", "cglib", "3.2.12"),
        ]
    )
    inv = parse_archive(jar, "tool.jar")
    assert sorted((p.name, p.version, p.licenses) for p in inv.packages) == [
        ("cglib:cglib", "3.2.12", []),
        ("com.example.tool", "4.2.3", ["Apache-2.0"]),
    ]


def test_nesting_deeper_than_the_limit_is_a_warning() -> None:
    deep = J.chain(5)
    assert got(deep, "level0.jar") == [
        ("org.example.nest:level0", "1.0", "level0.jar"),
        ("org.example.nest:level1", "1.0", "level0.jar!lib/level1.jar"),
        ("org.example.nest:level2", "1.0", "level0.jar!lib/level1.jar!lib/level2.jar"),
        ("org.example.nest:level3", "1.0", "level0.jar!lib/level1.jar!lib/level2.jar!lib/level3.jar"),
    ]
    too_deep = "level0.jar!lib/level1.jar!lib/level2.jar!lib/level3.jar!lib/level4.jar"
    assert codes(deep, "level0.jar") == [("archive-too-deep", too_deep)]


# -- limits and hostile input ------------------------------------------------------------------


def test_zip_bomb_member_is_refused_by_its_declared_size() -> None:
    # The whole-image test does this at the real 256 MiB cap with a 300 MiB member.
    bomb = J.zeros_member_zip("WEB-INF/lib/bomb.jar", 20 * MiB, extra=[J.pom_member("com.example", "w", "1")])
    assert len(bomb) < MiB // 4
    inv = parse_archive(bomb, "bomb.war", ArchiveLimits(max_member_bytes=16 * MiB))
    assert [(p.name, p.version) for p in inv.packages] == [("com.example:w", "1")]
    assert [(w.code, w.path) for w in inv.warnings] == [("file-too-large", "bomb.war!WEB-INF/lib/bomb.jar")]
    assert inv.warnings[0].message == (
        "bomb.war!WEB-INF/lib/bomb.jar: declares 20971520 bytes, over the 16777216-byte cap; not read"
    )


def test_member_over_a_small_cap_and_the_total_budget() -> None:
    limits = ArchiveLimits(max_member_bytes=1 * MiB, max_total_bytes=3 * MiB)
    inner = J.zip_bytes([J.pom_member("com.example", "inner", "1"), ("pad.bin", bytes(900 * 1024))], stored=True)
    big = J.zip_bytes([J.pom_member("com.example", "big", "1"), ("pad.bin", bytes(2 * MiB))], stored=True)
    outer = J.zip_bytes(
        [("lib/a.jar", inner), ("lib/big.jar", big), ("lib/b.jar", inner), ("lib/c.jar", inner), ("lib/d.jar", inner)]
    )
    inv = parse_archive(outer, "o.jar", limits)
    assert sorted(p.found_in for p in inv.packages) == ["o.jar!lib/a.jar", "o.jar!lib/b.jar", "o.jar!lib/c.jar"]
    assert [(w.code, w.path) for w in inv.warnings] == [
        ("file-too-large", "o.jar!lib/big.jar"),
        ("file-too-large", "o.jar!lib/d.jar"),
    ]
    assert "over the 1048576-byte cap" in inv.warnings[0].message
    assert "3145728-byte limit" in inv.warnings[1].message


def test_member_that_understates_its_size_is_a_parse_error() -> None:
    inner = J.zip_bytes([J.pom_member("com.example", "liar", "1"), ("pad.bin", bytes(64 * 1024))])
    outer = J.zip_bytes(
        [("lib/liar.jar", inner), ("lib/ok.jar", J.zip_bytes([J.pom_member("com.example", "ok", "2")]))]
    )
    lying = J.understate_size(outer, "lib/liar.jar", 100)
    inv = parse_archive(lying, "o.jar")
    assert [(p.name, p.found_in) for p in inv.packages] == [("com.example:ok", "o.jar!lib/ok.jar")]
    assert [(w.code, w.path) for w in inv.warnings] == [("parse-error", "o.jar!lib/liar.jar")]


def test_a_member_java_could_not_read_either_is_a_warning_and_the_rest_is_read() -> None:
    # Java reads stored and deflated members only: a bzip2 one (zipfile can write it) is left out, named.
    inner = J.zip_bytes([J.pom_member("com.example", "bz", "1")])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("lib/bz.jar"), inner, compress_type=zipfile.ZIP_BZIP2)
        zf.writestr(zipfile.ZipInfo("lib/ok.jar"), J.zip_bytes([J.pom_member("com.example", "ok", "2")]))
    inv = parse_archive(buf.getvalue(), "o.jar")
    assert [(p.name, p.found_in) for p in inv.packages] == [("com.example:ok", "o.jar!lib/ok.jar")]
    assert [(w.code, w.path) for w in inv.warnings] == [("parse-error", "o.jar!lib/bz.jar")]
    assert "compression method 12" in inv.warnings[0].message


def test_too_many_entries() -> None:
    many = J.zip_bytes([(f"c/{i}.class", b"") for i in range(12)])
    assert count_entries(many, 100) == 12
    assert codes(many, "m.jar", ArchiveLimits(max_entries=10)) == [("too-many-entries", "m.jar")]
    assert codes(many, "m.jar", ArchiveLimits(max_entries=12)) == []


def test_a_count_the_end_record_misstates_does_not_hide_entries() -> None:
    many = bytearray(J.zip_bytes([(f"c/{i}.class", b"") for i in range(12)]))
    eocd = many.rfind(b"PK\x05\x06")
    many[eocd + 8 : eocd + 12] = b"\x01\x00\xff\xff"  # one entry on this disk, 65535 in all, no zip64 records
    assert count_entries(bytes(many), 100) == 12
    assert codes(bytes(many), "m.jar", ArchiveLimits(max_entries=10)) == [("too-many-entries", "m.jar")]


def test_entries_are_counted_through_zip64_end_records() -> None:
    n = 0x10000  # one past what the classic end record can hold
    many = J.empty_members_zip64(n)
    with zipfile.ZipFile(io.BytesIO(many)) as zf:
        assert len(zf.infolist()) == n  # what zipfile itself makes of it
    assert count_entries(many, 10 * n) == n
    assert codes(many, "m.jar", ArchiveLimits(max_entries=n - 1)) == [("too-many-entries", "m.jar")]


def test_truncated_and_garbage_archives_are_warnings(real: dict[str, bytes]) -> None:
    truncated = real["slf4j-api"][: len(real["slf4j-api"]) // 2]
    assert codes(truncated, "usr/share/java/t.jar") == [("parse-error", "usr/share/java/t.jar")]
    assert codes(b"not a zip at all", "x.jar") == [("parse-error", "x.jar")]
    assert codes(b"", "x.jar") == [("parse-error", "x.jar")]
    war = J.war({"broken.jar": truncated, "slf4j-simple.jar": real["slf4j-simple"]})
    inv = parse_archive(war, "app/app.war")
    assert [(p.name, p.found_in) for p in inv.packages] == [
        ("org.slf4j:slf4j-simple", "app/app.war!WEB-INF/lib/slf4j-simple.jar")
    ]
    assert [(w.code, w.path) for w in inv.warnings] == [("parse-error", "app/app.war!WEB-INF/lib/broken.jar")]
    assert inv.warnings[0].message.startswith("app/app.war!WEB-INF/lib/broken.jar: not a readable zip archive")


def test_pom_properties_without_a_version_is_a_warning() -> None:
    jar = J.zip_bytes(
        [
            ("META-INF/maven/g/a/pom.properties", b"groupId=g\nartifactId=a\n"),
            ("META-INF/maven/g/b/pom.properties", b"groupId=g\nartifactId=b\nversion=${project.version}\n"),
            J.pom_member("g", "c", "3"),
        ]
    )
    inv = parse_archive(jar, "j.jar")
    assert [(p.name, p.version) for p in inv.packages] == [("g:c", "3")]
    assert [(w.code, w.path) for w in inv.warnings] == [
        ("parse-error", "j.jar!META-INF/maven/g/a/pom.properties"),
        ("parse-error", "j.jar!META-INF/maven/g/b/pom.properties"),
    ]


def test_analyzer_never_raises_and_reports_warnings() -> None:
    a = JarAnalyzer()
    assert a.max_file_size == 256 * MiB
    assert a.scopes == frozenset({"image", "dir"})
    assert all(a.required(p) for p in ("x.jar", "a/b.war", "c.ear", "d.hpi", "e.jpi", "f.sar", "g.par"))
    r = a.analyze(FileInput(path="opt/x.jar", content=b"PK\x03\x04garbage"))
    assert r.packages == [] and [(w.code, w.path) for w in r.warnings] == [("parse-error", "opt/x.jar")]


# -- the small formats -------------------------------------------------------------------------


def test_manifest_main_section_continuations_and_line_ends() -> None:
    text = (
        b"Manifest-Version: 1.0\r\nImplementation-Title: long-na\r\n me-here\rbundle-version: 2.0\n"
        b"Implementation-Version:3.1\n\nName: org/example/\nImplementation-Version: 9.9\n"
    )
    attrs = parse_manifest(text)
    assert attrs == {
        "manifest-version": "1.0",
        "implementation-title": "long-name-here",
        "bundle-version": "2.0",
        "implementation-version": "3.1",
    }


def test_properties_format() -> None:
    text = (
        b"# comment\n! also a comment\n  groupId = org.example\nartifactId:lib\\\n    rary\n"
        b"version 1.0\\u002dRC1\nempty=\nkey\\=with\\:seps=v\n"
    )
    assert parse_properties(text) == {
        "groupId": "org.example",
        "artifactId": "library",
        "version": "1.0-RC1",
        "empty": "",
        "key=with:seps": "v",
    }


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("commons-lang3-3.12.0.jar", ("commons-lang3", "3.12.0")),
        ("lib/guava-31.1-jre.jar", ("guava", "31.1-jre")),
        ("log4j-1.2-api-2.17.1.jar", ("log4j-1.2-api", "2.17.1")),
        ("spring-core-5.3.4-SNAPSHOT.jar", ("spring-core", "5.3.4-SNAPSHOT")),
        ("netty-all-4.1.100.Final.JAR", ("netty-all", "4.1.100.Final")),
        ("jenkins-plugin-1.0.0.hpi", ("jenkins-plugin", "1.0.0")),
        ("commons-lang3.jar", None),
        ("app.jar", None),
        ("1.0.jar", None),
        ("readme-1.0.txt", None),
    ],
)
def test_coordinates_from_file_name(name: str, expected: tuple[str, str] | None) -> None:
    assert coordinates_from_file_name(name) == expected


@pytest.mark.parametrize(
    ("attrs", "file_name", "expected"),
    [
        # the symbolic name confirms the vendor id as the group, in each of maven-bundle-plugin's forms
        (
            {
                "implementation-title": "jackson-databind",
                "implementation-vendor-id": "com.fasterxml.jackson.core",
                "bundle-symbolicname": "com.fasterxml.jackson.core.jackson-databind",
                "implementation-version": "2.15.2",
            },
            "x.jar",
            ("com.fasterxml.jackson.core:jackson-databind", "2.15.2"),
        ),
        (
            {
                "implementation-vendor-id": "org.apache.commons",
                "bundle-symbolicname": "org.apache.commons.lang3;singleton:=true",
                "bundle-version": "3.12.0",
            },
            "commons-lang3.jar",
            ("org.apache.commons.lang3", "3.12.0"),
        ),
        (
            {
                "implementation-vendor-id": "org.apache.commons",
                "bundle-symbolicname": "org.apache.commons.lang3",
                "bundle-version": "3.12.0",
            },
            "commons-lang3-3.12.0.jar",
            ("org.apache.commons:commons-lang3", "3.12.0"),
        ),
        (
            {"implementation-vendor-id": "com.google.guava", "bundle-symbolicname": "com.google.guava"},
            "guava-31.1-jre.jar",
            ("com.google.guava:guava", "31.1-jre"),
        ),
        # an organisation-wide vendor id is not the group
        (
            {
                "implementation-title": "commons-io",
                "implementation-vendor-id": "org.apache",
                "bundle-symbolicname": "org.apache.commons.io",
                "implementation-version": "2.11.0",
            },
            "x.jar",
            ("commons-io", "2.11.0"),
        ),
        # a vendor name, a bare vendor id and placeholders are ignored
        (
            {
                "implementation-title": "%bundle.name",
                "implementation-vendor-id": "The Apache Software Foundation",
                "implementation-version": "${project.version}",
                "bundle-version": "1.4",
            },
            "widget-1.3.jar",
            ("widget", "1.4"),
        ),
        ({"implementation-title": "My App", "implementation-version": "1.0"}, "app.jar", None),
        ({"implementation-title": "tool"}, "app.jar", None),
        ({}, "tool-2.0.war", ("tool", "2.0")),
    ],
)
def test_manifest_identity_rules(attrs: dict[str, str], file_name: str, expected: tuple[str, str] | None) -> None:
    assert manifest_identity(attrs, file_name) == expected


def test_bundle_license_header() -> None:
    header = (
        'Apache-2.0;link="https://www.apache.org/licenses/LICENSE-2.0.txt";description="Apache License, Version 2.0",'
        " https://opensource.org/licenses/MIT, <<EXTERNAL>>, EPL-2.0"
    )
    assert bundle_licenses(header) == ["Apache-2.0", "MIT", "EPL-2.0"]
    assert bundle_licenses("http://www.apache.org/licenses/LICENSE-2.0.txt") == ["Apache-2.0"]
    assert bundle_licenses("https://www.gnu.org/licenses/old-licenses/lgpl-2.1.html") == ["LGPL-2.1-only"]
    assert bundle_licenses("${license}, <<EXTERNAL>>") == []


def test_bundle_license_goes_only_to_the_package_the_manifest_describes() -> None:
    lic = J.manifest(Implementation_Title="one", Implementation_Version="1", Bundle_License="MIT")
    single = J.zip_bytes([lic, J.pom_member("g", "one", "1")])
    assert [(p.name, p.licenses) for p in parse_archive(single, "s.jar").packages] == [("g:one", ["MIT"])]
    nested = J.zip_bytes(
        [lic, J.pom_member("g", "one", "1"), ("lib/two.jar", J.zip_bytes([J.pom_member("g", "two", "2")]))]
    )
    assert sorted((p.name, p.licenses) for p in parse_archive(nested, "n.jar").packages) == [
        ("g:one", ["MIT"]),
        ("g:two", []),
    ]
    both = J.zip_bytes(
        [
            J.manifest(Implementation_Version="1", Bundle_License="MIT"),
            J.pom_member("g", "a", "1"),
            J.pom_member("g", "b", "1"),
        ]
    )
    assert sorted((p.name, p.licenses) for p in parse_archive(both, "b.jar").packages) == [("g:a", []), ("g:b", [])]


def test_zipfile_reads_what_the_helpers_build() -> None:
    boot = J.spring_boot({"x.jar": J.zip_bytes([J.pom_member("g", "x", "1")])}, own=("g", "app", "1"))
    with zipfile.ZipFile(io.BytesIO(boot)) as zf:
        assert zf.getinfo("BOOT-INF/lib/x.jar").compress_type == zipfile.ZIP_STORED
