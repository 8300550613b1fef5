"""Whole scans of Ruby gems: this machine's installed gem specifications, and a Gemfile.lock.

The gemspecs are the real ones Debian's ``ruby`` and ``ruby-*`` packages
install (each package's copyright is in ``/usr/share/doc/<package>/copyright``);
what the scan reports is compared with ``gem list --local`` and with RubyGems'
own ``Gem::Specification.load``. The Gemfile.lock is hand-written (see
tests/data/ruby/README.md).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from shared.domain.models import ScanResult
from shared.scanning.analyzers.all import enabled_analyzers
from shared.scanning.analyzers.base import Analyzer
from shared.scanning.analyzers.ruby import GemfileLockAnalyzer, GemspecAnalyzer
from shared.scanning.scanner import ScanRequest, scan
from tests.conftest import UNDER_CI, require_tool
from tests.support import images as I

DATA = Path(__file__).resolve().parent.parent / "data" / "ruby"
HINT = "Debian's ruby, with at least one ruby-* library: apt-get install ruby-rack"

#: Where Ruby itself keeps its gems; everything else here came from ruby-* packages.
RUBY_OWN = "usr/lib/ruby/"


def ruby_analyzers() -> list[Analyzer]:
    return [GemspecAnalyzer(), GemfileLockAnalyzer()]


def image_analyzers() -> list[Analyzer]:
    """These analyzers as the scanner picks them for an image scan (lock-file analyzers left out)."""
    names = {a.name for a in ruby_analyzers()}
    return [a for a in enabled_analyzers("image") if a.name in names]


@pytest.fixture(scope="module")
def machine_gems() -> list[tuple[str, str, str, list[str]]]:
    """(image path, name, version, licences) of every gemspec RubyGems reads on this machine."""
    ruby = require_tool("ruby", HINT)
    script = (
        "(Gem::Specification.dirs + [Gem.default_specifications_dir]).uniq.each { |d| "
        "Dir.glob(File.join(d, '*.gemspec')).sort.each { |f| s = Gem::Specification.load(f); "
        "puts [f, s.name, s.version.to_s, *s.licenses].join(9.chr) if s } }"
    )
    out = subprocess.run([ruby, "-e", script], check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        f, name, version, *licenses = line.split("\t")
        rows.append((f.lstrip("/"), name, version, licenses))
    if not any(not f.startswith(RUBY_OWN) for f, *_ in rows):
        message = f"no gem from a ruby-* package is installed ({HINT})"
        if UNDER_CI:
            pytest.fail(message + " - required under CI", pytrace=False)
        pytest.skip(message)
    return rows


def gem_list_local() -> set[tuple[str, str]]:
    gem = require_tool("gem", HINT)
    out = subprocess.run([gem, "list", "--local"], check=True, capture_output=True, text=True).stdout
    found = set()
    for line in out.splitlines():
        name, sep, versions = line.partition(" (")
        if not sep:
            continue
        for v in versions.rstrip(")").split(", "):
            found.add((name, v.removeprefix("default: ").split(" ")[0]))
    return found


def scan_oci(tmp_path: Path, layers: list[I.Layer], analyzers: list[Analyzer] | None = None) -> ScanResult:
    layout = I.write_oci_layout(tmp_path / "img", I.image(layers))
    return scan(ScanRequest(f"oci:{layout}"), analyzers=analyzers if analyzers is not None else image_analyzers())[0]


def test_installed_gems_of_this_machine_in_two_layers(
    tmp_path: Path, machine_gems: list[tuple[str, str, str, list[str]]]
) -> None:
    own = [I.file(f, Path("/" + f).read_bytes()) for f, *_ in machine_gems if f.startswith(RUBY_OWN)]
    debs = [I.file(f, Path("/" + f).read_bytes()) for f, *_ in machine_gems if not f.startswith(RUBY_OWN)]
    r = scan_oci(tmp_path, [I.layer(own), I.layer(debs)])
    assert r.warnings == []
    got = [(p.found_in, p.name, p.version, p.licenses, p.layer_index, p.purl, p.ecosystem, p.dev) for p in r.packages]
    expected = [
        (f, n, v, lic, 0 if f.startswith(RUBY_OWN) else 1, f"pkg:gem/{n}@{v}", "RubyGems", False)
        for f, n, v, lic in machine_gems
    ]
    # in the scanner's order: name, version, file
    assert got == sorted(expected, key=lambda row: (row[1], row[2], row[0]))
    # the same gems `gem list --local` shows (it lists a gem installed in two places once)
    assert {(p.name, p.version) for p in r.packages} == gem_list_local()
    rack = [p for p in r.packages if p.name == "rack"]
    assert [(p.licenses, p.layer_index, p.found_in.startswith("usr/share/rubygems-integration/")) for p in rack] == [
        (["MIT"], 1, True)
    ]


def test_a_gem_removed_in_a_later_layer_is_gone(
    tmp_path: Path, machine_gems: list[tuple[str, str, str, list[str]]]
) -> None:
    debs = [(f, n) for f, n, *_ in machine_gems if not f.startswith(RUBY_OWN)]
    files = [I.file(f, Path("/" + f).read_bytes()) for f, _ in debs]
    gone_path, gone_name = debs[0]
    head, _, base = gone_path.rpartition("/")
    r = scan_oci(tmp_path, [I.layer(files), I.layer([I.file(f"{head}/.wh.{base}", b"")])])
    assert sorted((p.found_in, p.name) for p in r.packages) == sorted(debs[1:])
    assert gone_name not in {p.name for p in r.packages if p.found_in == gone_path}


def test_gemspec_without_version_warns_and_others_still_scan(
    tmp_path: Path, machine_gems: list[tuple[str, str, str, list[str]]]
) -> None:
    path, name, version, licenses = machine_gems[0]
    spec_dir = path.rpartition("/")[0]
    broken = b'Gem::Specification.new do |s|\n  s.name = "half-written".freeze\n  s.licenses = ["MIT".freeze]\nend\n'
    r = scan_oci(
        tmp_path,
        [
            I.layer(
                [I.file(path, Path("/" + path).read_bytes()), I.file(f"{spec_dir}/half-written-1.0.gemspec", broken)]
            )
        ],
    )
    assert [(p.name, p.version, p.licenses) for p in r.packages] == [(name, version, licenses)]
    assert [(w.code, w.path, w.message) for w in r.warnings] == [
        (
            "parse-error",
            f"{spec_dir}/half-written-1.0.gemspec",
            f"{spec_dir}/half-written-1.0.gemspec: half-written: no literal version (`.version = ...`)",
        )
    ]


EXPECTED_LOCKED = [
    ("actionpack", "7.0.8", "pkg:gem/actionpack@7.0.8"),
    ("actionview", "7.0.8", "pkg:gem/actionview@7.0.8"),
    ("activesupport", "7.0.8", "pkg:gem/activesupport@7.0.8"),
    ("builder", "3.2.4", "pkg:gem/builder@3.2.4"),
    ("concurrent-ruby", "1.2.2", "pkg:gem/concurrent-ruby@1.2.2"),
    ("ffi", "1.16.3", "pkg:gem/ffi@1.16.3"),
    ("i18n", "1.14.1", "pkg:gem/i18n@1.14.1"),
    ("internal_auth", "2.4.0", "pkg:gem/internal_auth@2.4.0"),
    ("minitest", "5.20.0", "pkg:gem/minitest@5.20.0"),
    ("nokogiri", "1.15.4", "pkg:gem/nokogiri@1.15.4"),
    ("racc", "1.7.1", "pkg:gem/racc@1.7.1"),
    ("rack", "2.2.8", "pkg:gem/rack@2.2.8"),
    ("rack-test", "2.1.0", "pkg:gem/rack-test@2.1.0"),
    ("rails-html-sanitizer", "1.6.0", "pkg:gem/rails-html-sanitizer@1.6.0"),
    ("tzinfo", "2.0.6", "pkg:gem/tzinfo@2.0.6"),
]


def test_dir_scan_reads_gemfile_lock_and_an_image_scan_does_not(tmp_path: Path) -> None:
    root = tmp_path / "src"
    (root / "app").mkdir(parents=True)
    shutil.copy(DATA / "Gemfile.lock", root / "app/Gemfile.lock")
    (root / "app/Gemfile").write_text('source "https://rubygems.org"\ngem "actionpack", "~> 7.0.8"\n')
    r = scan(ScanRequest(f"dir:{root}"), analyzers=ruby_analyzers())[0]
    assert r.warnings == []
    assert [(p.name, p.version, p.purl) for p in r.packages] == EXPECTED_LOCKED
    assert {(p.found_in, p.ecosystem, p.dev, p.layer_index) for p in r.packages} == {
        ("app/Gemfile.lock", "RubyGems", False, 0)
    }
    # an image holding the same files: the scanner's image analyzers leave lock files alone
    files = [I.file(f"srv/{p.relative_to(root).as_posix()}", p.read_bytes()) for p in root.rglob("*") if p.is_file()]
    layout = I.write_oci_layout(tmp_path / "img", I.image([I.layer(files)]))
    assert [p for p in scan(ScanRequest(f"oci:{layout}"))[0].packages if p.type == "gem"] == []
    assert [(p.name, p.version) for p in scan(ScanRequest(f"dir:{root}"))[0].packages if p.type == "gem"] == [
        (n, v) for n, v, _ in EXPECTED_LOCKED
    ]
