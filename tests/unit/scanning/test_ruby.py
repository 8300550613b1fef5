"""Ruby parsers and analyzer path matching.

The gemspec inputs below are written by hand in the shapes RubyGems has
written over the years (``to_ruby`` output with ``.freeze``, older ``%q{}``
literals, hand-maintained specs); real installed gemspecs are read in
tests/functional/test_lang_ruby.py. The Gemfile.lock fixture is hand-written
(see tests/data/ruby/README.md).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from shared.scanning.analyzers.base import FileInput
from shared.scanning.analyzers.ruby import GemfileLockAnalyzer, GemspecAnalyzer
from shared.scanning.parsers.ruby import parse_gemfile_lock, parse_gemspec
from tests.conftest import require_tool

DATA = Path(__file__).resolve().parent.parent.parent / "data" / "ruby"

MODERN = b"""# -*- encoding: utf-8 -*-
# stub: nokogiri 1.15.4 x86_64-linux lib

Gem::Specification.new do |s|
  s.name = "nokogiri".freeze
  s.version = "1.15.4"
  s.platform = "x86_64-linux".freeze

  s.required_rubygems_version = Gem::Requirement.new(">= 0".freeze) if s.respond_to? :required_rubygems_version=
  s.metadata = { "name" => "x" } if s.respond_to? :metadata=
  s.authors = ["Mike Dalessio".freeze, "Aaron Patterson".freeze]
  s.description = "s.version = \\"9.9\\"".freeze
  s.licenses = ["MIT".freeze]
  s.add_runtime_dependency(%q<racc>.freeze, ["~> 1.4"])
end
"""

OLD = b"""# -*- encoding: utf-8 -*-

Gem::Specification.new do |s|
  s.name = %q{json_pure}
  s.version = Gem::Version.new("1.8.6")
  s.license = %q{Ruby}
  s.authors = [%q{Florian Frank}]
end
"""

HAND = b"""Gem::Specification.new do |spec|
  spec.name          = 'my-gem'
  spec.version       = '0.2.0.pre.1'
  spec.licenses      = [
    'Apache-2.0',
    "Caf\\u00e9-License"
  ]
  other.name = 'not-this-one'
end
"""


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (MODERN, ("nokogiri", "1.15.4", ["MIT"])),
        (OLD, ("json_pure", "1.8.6", ["Ruby"])),
        (HAND, ("my-gem", "0.2.0.pre.1", ["Apache-2.0", "Café-License"])),
        (b'Gem::Specification.new { |g| g.name = "a"; g.version = "1" }\n', None),
        (
            b"Gem::Specification.new do |s|\n  s.name = 'w'\n  s.version = '2'\n"
            b"  s.licenses = %w[MIT BSD-2-Clause]\nend\n",
            ("w", "2", ["MIT", "BSD-2-Clause"]),
        ),
        # a specification stub line alone still names the gem (RubyGems reads it the same way)
        (b"# stub: rack 2.2.8 ruby lib\nGem::Specification.new do |s|\nend\n", ("rack", "2.2.8", [])),
    ],
)
def test_gemspec_forms(content: bytes, expected: tuple[str, str, list[str]] | None) -> None:
    pkgs, problems = parse_gemspec(content, "specifications/x.gemspec")
    if expected is None:  # one-line blocks are not RubyGems output; nothing is made up from them
        assert pkgs == [] and problems == ["no gem name (no literal `.name = ...` nor a `# stub:` line)"]
        return
    assert problems == []
    assert [(p.type, p.name, p.version, p.licenses, p.purl, p.found_in) for p in pkgs] == [
        ("gem", *expected, "", "specifications/x.gemspec")
    ]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            b"Gem::Specification.new do |s|\n  s.name = 'a'\n  s.licenses = ['MIT']\nend\n",
            "a: no literal version (`.version = ...`)",
        ),
        (
            b"Gem::Specification.new do |s|\n  s.name = 'a'\n  s.version = A::VERSION\nend\n",
            "a: no literal version (`.version = ...`)",
        ),
        (
            b"Gem::Specification.new do |s|\n  s.version = '1'\nend\n",
            "no gem name (no literal `.name = ...` nor a `# stub:` line)",
        ),
        (b"Gem::Specification.new do |s|\n  s.name = 'a b'\n  s.version = '1'\nend\n", "invalid gem name 'a b'"),
        (b"\x00\xff\xfe binary", "no gem name (no literal `.name = ...` nor a `# stub:` line)"),
        (b"", "no gem name (no literal `.name = ...` nor a `# stub:` line)"),
    ],
)
def test_gemspec_problems(content: bytes, problem: str) -> None:
    assert parse_gemspec(content, "x") == ([], [problem])


def test_gemspecs_of_this_machine_match_rubygems() -> None:
    """Every gemspec RubyGems knows here, read by us and by ``Gem::Specification.load``."""
    ruby = require_tool("ruby", "Debian's ruby; apt-get install ruby-rack")
    script = (
        "(Gem::Specification.dirs + [Gem.default_specifications_dir]).uniq.each { |d| "
        "Dir.glob(File.join(d, '*.gemspec')).sort.each { |f| s = Gem::Specification.load(f); "
        "puts [f, s.name, s.version.to_s, s.licenses.join(',')].join(9.chr) if s } }"
    )
    out = subprocess.run([ruby, "-e", script], check=True, capture_output=True, text=True).stdout
    expected = [tuple(line.split("\t")) for line in out.splitlines()]
    assert len(expected) > 10
    got = []
    for f, *_ in expected:
        pkgs, problems = parse_gemspec(Path(f).read_bytes(), f)
        assert problems == [], f
        got.append((f, pkgs[0].name, pkgs[0].version, ",".join(pkgs[0].licenses)))
    assert got == expected


def test_gemfile_lock_specs_of_gem_sections() -> None:
    pkgs, problems = parse_gemfile_lock((DATA / "Gemfile.lock").read_bytes(), "Gemfile.lock")
    assert problems == []
    assert [(p.name, p.version, p.dev) for p in pkgs] == [
        ("actionpack", "7.0.8", False),
        ("actionview", "7.0.8", False),
        ("activesupport", "7.0.8", False),
        ("builder", "3.2.4", False),
        ("concurrent-ruby", "1.2.2", False),
        ("ffi", "1.16.3", False),  # once, though locked for two platforms
        ("i18n", "1.14.1", False),
        ("minitest", "5.20.0", False),
        ("nokogiri", "1.15.4", False),
        ("racc", "1.7.1", False),
        ("rack", "2.2.8", False),
        ("rack-test", "2.1.0", False),
        ("rails-html-sanitizer", "1.6.0", False),
        ("tzinfo", "2.0.6", False),
        ("internal_auth", "2.4.0", False),
    ]


def test_gemfile_lock_crlf_and_bad_spec_lines() -> None:
    lock = b"GEM\r\n  remote: https://rubygems.org/\r\n  specs:\r\n    rake (13.0.6)\r\n    broken\r\n    x ()\r\n\r\n"
    pkgs, problems = parse_gemfile_lock(lock, "Gemfile.lock")
    assert [(p.name, p.version) for p in pkgs] == [("rake", "13.0.6")]
    assert problems == ["line 5: not a gem spec: 'broken'", "line 6: x has no version"]
    assert parse_gemfile_lock(b"\x00\x01", "Gemfile.lock") == ([], [])


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec", True),
        ("usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec", True),
        ("usr/share/rubygems-integration/all/specifications/rack-2.2.22.gemspec", True),
        ("usr/local/bundle/specifications/puma-6.4.0.gemspec", True),
        ("specifications/a-1.gemspec", True),
        ("usr/local/bundle/gems/puma-6.4.0/puma.gemspec", False),
        ("app/my.gemspec", False),
        ("x/myspecifications/a-1.gemspec", False),
    ],
)
def test_gemspec_analyzer_paths(path: str, wanted: bool) -> None:
    a = GemspecAnalyzer()
    assert (path.endswith(a.suffixes) and a.required(path)) is wanted


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("Gemfile.lock", True),
        ("app/Gemfile.lock", True),
        ("app/gems.locked", True),
        ("app/vendor/bundle/ruby/3.2.0/gems/x-1/Gemfile.lock", False),
        ("app/MyGemfile.lock", False),
    ],
)
def test_gemfile_lock_analyzer_paths(path: str, wanted: bool) -> None:
    a = GemfileLockAnalyzer()
    assert a.scopes == frozenset({"dir"})
    assert (path.endswith(a.suffixes) and a.required(path)) is wanted


def test_gemspec_without_version_is_a_warning_naming_the_file() -> None:
    path = "usr/local/bundle/specifications/a-1.gemspec"
    r = GemspecAnalyzer().analyze(FileInput(path=path, content=b"Gem::Specification.new do |s|\n  s.name = 'a'\nend\n"))
    assert r.packages == []
    assert [(w.code, w.path, w.message) for w in r.warnings] == [
        ("parse-error", path, f"{path}: a: no literal version (`.version = ...`)")
    ]
