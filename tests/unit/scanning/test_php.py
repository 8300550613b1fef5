"""Composer parsers and analyzer path matching, on the hand-written fixtures of tests/data/php (see its README)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.scanning.analyzers.base import FileInput
from shared.scanning.analyzers.php import ComposerInstalledAnalyzer, ComposerLockAnalyzer
from shared.scanning.parsers.php import parse_composer_lock, parse_installed_json

DATA = Path(__file__).resolve().parent.parent.parent / "data" / "php"


def rows(parsed: tuple[list, list[str]]) -> list[tuple[str, str, list[str], bool]]:
    return [(p.name, p.version, p.licenses, p.dev) for p in parsed[0]]


def test_installed_json_composer_2_with_dev_package_names() -> None:
    parsed = parse_installed_json((DATA / "installed-composer2.json").read_bytes(), "vendor/composer/installed.json")
    assert parsed[1] == []
    assert rows(parsed) == [
        ("monolog/monolog", "3.5.0", ["MIT"], False),
        ("psr/log", "3.0.0", ["MIT"], False),
        ("symfony/http-foundation", "v6.3.8", ["MIT"], False),  # the v is kept, as Packagist spells it
        ("acme/internal-tools", "dev-main", [], False),
        ("phpunit/phpunit", "10.4.2", ["BSD-3-Clause"], True),
    ]
    assert {(p.type, p.purl, p.found_in, p.ecosystem) for p in parsed[0]} == {
        ("composer", "", "vendor/composer/installed.json", None)
    }


def test_installed_json_composer_1_array() -> None:
    parsed = parse_installed_json((DATA / "installed-composer1.json").read_bytes(), "i.json")
    assert parsed[1] == []
    assert rows(parsed) == [
        ("guzzlehttp/guzzle", "6.5.5", ["MIT"], False),
        ("twig/twig", "v2.12.5", ["BSD-3-Clause"], False),
        ("laminas/laminas-zendframework-bridge", "1.1.1", ["BSD-3-Clause"], False),
    ]


def test_composer_lock_packages_and_packages_dev() -> None:
    parsed = parse_composer_lock((DATA / "composer.lock").read_bytes(), "composer.lock")
    assert parsed[1] == []
    assert rows(parsed) == [
        ("guzzlehttp/psr7", "2.6.1", ["MIT"], False),
        ("psr/http-message", "2.0", ["MIT"], False),
        ("symfony/console", "v6.3.4", ["MIT"], False),
        ("league/commonmark", "2.4.1", ["BSD-3-Clause"], False),
        ("mockery/mockery", "1.6.6", ["BSD-3-Clause"], True),
        ("phpstan/phpstan", "1.10.39", ["MIT"], True),
    ]


@pytest.mark.parametrize(
    ("content", "packages", "problem"),
    [
        (b'{"packages": [{"name": "a/b", "version": "1.0"}', [], "invalid JSON: "),
        (b'"just a string"', [], "not a Composer installed.json"),
        (b'{"dev": true}', [], "not a Composer installed.json"),
        (b"\xff\xfe{}", [], "not UTF-8 text"),
        (
            b'[{"name": "a/b", "version": "1.0", "license": 7}, {"name": "c/d"}, 3, {"version": "2"}]',
            [("a/b", "1.0", [], False)],
            "3 package entries without a name or version were skipped",
        ),
        (
            b'{"packages": [{"name": "a/b", "version": "1.0"}], "dev-package-names": "a/b"}',
            [("a/b", "1.0", [], False)],
            None,
        ),
    ],
)
def test_installed_json_malformed(
    content: bytes, packages: list[tuple[str, str, list[str], bool]], problem: str | None
) -> None:
    pkgs, problems = parse_installed_json(content, "x")
    assert rows((pkgs, problems)) == packages
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].startswith(problem)


def test_composer_lock_malformed() -> None:
    assert parse_composer_lock(b"[]", "c")[1] == ["not a composer.lock: the top level is not an object"]
    assert parse_composer_lock(b'{"packages": null, "packages-dev": {}}', "c") == ([], [])
    pkgs, problems = parse_composer_lock(b'{"packages": [{"name": "a/b"', "c")
    assert pkgs == [] and problems[0].startswith("invalid JSON: ")


@pytest.mark.parametrize(
    ("path", "installed", "lock"),
    [
        ("vendor/composer/installed.json", True, False),
        ("var/www/html/vendor/composer/installed.json", True, False),
        ("var/www/html/myvendor/composer/installed.json", False, False),
        ("var/www/html/vendor/composer/installed.php", False, False),
        ("composer.lock", False, True),
        ("app/composer.lock", False, True),
        ("app/vendor/acme/lib/composer.lock", False, False),
        ("vendor/acme/lib/composer.lock", False, False),
        ("app/mycomposer.lock", False, False),
    ],
)
def test_analyzer_paths(path: str, installed: bool, lock: bool) -> None:
    i, c = ComposerInstalledAnalyzer(), ComposerLockAnalyzer()
    assert (path in i.paths or (path.endswith(i.suffixes) and i.required(path))) is installed
    assert (path.endswith(c.suffixes) and c.required(path)) is lock
    assert i.scopes == frozenset({"image", "dir"}) and c.scopes == frozenset({"dir"})


def test_invalid_installed_json_is_a_warning_naming_the_file() -> None:
    path = "srv/vendor/composer/installed.json"
    r = ComposerInstalledAnalyzer().analyze(FileInput(path=path, content=b"{", layer_diff_id="sha256:2"))
    assert r.packages == []
    assert [(w.code, w.path, w.layer_diff_id) for w in r.warnings] == [("parse-error", path, "sha256:2")]
    assert r.warnings[0].message.startswith(f"{path}: invalid JSON: ")
