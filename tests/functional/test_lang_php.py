"""Whole scans of PHP applications: Composer's installed.json in image layers, and composer.lock in source trees.

The inputs are the hand-written fixtures of tests/data/php (no Composer is
installed where the tests run; see the README there).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from shared.domain.models import ScanResult
from shared.scanning.analyzers.all import enabled_analyzers
from shared.scanning.analyzers.base import Analyzer
from shared.scanning.analyzers.php import ComposerInstalledAnalyzer, ComposerLockAnalyzer
from shared.scanning.scanner import ScanRequest, scan
from tests.support import images as I

DATA = Path(__file__).resolve().parent.parent / "data" / "php"
APP = "var/www/html"
INSTALLED = f"{APP}/vendor/composer/installed.json"


def php_analyzers() -> list[Analyzer]:
    return [ComposerInstalledAnalyzer(), ComposerLockAnalyzer()]


def image_analyzers() -> list[Analyzer]:
    """These analyzers as the scanner picks them for an image scan (lock-file analyzers left out)."""
    names = {a.name for a in php_analyzers()}
    return [a for a in enabled_analyzers("image") if a.name in names]


def scan_oci(tmp_path: Path, layers: list[I.Layer], analyzers: list[Analyzer] | None = None) -> ScanResult:
    layout = I.write_oci_layout(tmp_path / "img", I.image(layers))
    return scan(ScanRequest(f"oci:{layout}"), analyzers=analyzers if analyzers is not None else image_analyzers())[0]


def installed_v2(names: set[str] | None = None) -> bytes:
    """The Composer 2 fixture, optionally cut down to some packages (an earlier install)."""
    doc = json.loads((DATA / "installed-composer2.json").read_text())
    if names is not None:
        doc["packages"] = [p for p in doc["packages"] if p["name"] in names]
        doc["dev-package-names"] = [n for n in doc["dev-package-names"] if n in names]
    return json.dumps(doc, indent=4).encode()


def test_installed_packages_with_layers_dev_flags_and_both_formats(tmp_path: Path) -> None:
    first = installed_v2({"monolog/monolog", "psr/log"})
    r = scan_oci(
        tmp_path,
        [
            I.layer([I.file(INSTALLED, first), I.file(f"{APP}/composer.lock", (DATA / "composer.lock").read_bytes())]),
            # `composer require` and `composer install --dev` later rewrite the same file
            I.layer([I.file(INSTALLED, installed_v2())]),
            # a second, older application built with Composer 1
            I.layer(
                [I.file("opt/legacy/vendor/composer/installed.json", (DATA / "installed-composer1.json").read_bytes())]
            ),
        ],
    )
    assert r.warnings == []
    assert [
        (p.name, p.version, p.purl, p.ecosystem, p.licenses, p.dev, p.layer_index, p.found_in) for p in r.packages
    ] == [
        (
            "acme/internal-tools",
            "dev-main",
            "pkg:composer/acme/internal-tools@dev-main",
            "Packagist",
            [],
            False,
            1,
            INSTALLED,
        ),
        (
            "guzzlehttp/guzzle",
            "6.5.5",
            "pkg:composer/guzzlehttp/guzzle@6.5.5",
            "Packagist",
            ["MIT"],
            False,
            2,
            "opt/legacy/vendor/composer/installed.json",
        ),
        (
            "laminas/laminas-zendframework-bridge",
            "1.1.1",
            "pkg:composer/laminas/laminas-zendframework-bridge@1.1.1",
            "Packagist",
            ["BSD-3-Clause"],
            False,
            2,
            "opt/legacy/vendor/composer/installed.json",
        ),
        ("monolog/monolog", "3.5.0", "pkg:composer/monolog/monolog@3.5.0", "Packagist", ["MIT"], False, 0, INSTALLED),
        (
            "phpunit/phpunit",
            "10.4.2",
            "pkg:composer/phpunit/phpunit@10.4.2",
            "Packagist",
            ["BSD-3-Clause"],
            True,
            1,
            INSTALLED,
        ),
        ("psr/log", "3.0.0", "pkg:composer/psr/log@3.0.0", "Packagist", ["MIT"], False, 0, INSTALLED),
        (
            "symfony/http-foundation",
            "v6.3.8",
            "pkg:composer/symfony/http-foundation@v6.3.8",
            "Packagist",
            ["MIT"],
            False,
            1,
            INSTALLED,
        ),
        (
            "twig/twig",
            "v2.12.5",
            "pkg:composer/twig/twig@v2.12.5",
            "Packagist",
            ["BSD-3-Clause"],
            False,
            2,
            "opt/legacy/vendor/composer/installed.json",
        ),
    ]


def test_invalid_installed_json_warns_and_others_still_scan(tmp_path: Path) -> None:
    r = scan_oci(
        tmp_path,
        [
            I.layer(
                [
                    I.file(INSTALLED, installed_v2({"psr/log"})),
                    I.file("srv/other/vendor/composer/installed.json", b'{"packages": [{"name": "a/b", '),
                ]
            )
        ],
    )
    assert [(p.name, p.version) for p in r.packages] == [("psr/log", "3.0.0")]
    assert [(w.code, w.path) for w in r.warnings] == [("parse-error", "srv/other/vendor/composer/installed.json")]
    assert r.warnings[0].message.startswith("srv/other/vendor/composer/installed.json: invalid JSON: ")


def test_dir_scan_reads_composer_lock_and_an_image_scan_does_not(tmp_path: Path) -> None:
    root = tmp_path / "src"
    (root / "vendor/acme/lib").mkdir(parents=True)
    shutil.copy(DATA / "composer.lock", root / "composer.lock")
    # a library's own lock file under vendor/ is not what the project installs
    (root / "vendor/acme/lib/composer.lock").write_text('{"packages": [{"name": "x/y", "version": "9.9.9"}]}')
    r = scan(ScanRequest(f"dir:{root}"), analyzers=php_analyzers())[0]
    assert r.warnings == []
    expected = [
        ("guzzlehttp/psr7", "2.6.1", "pkg:composer/guzzlehttp/psr7@2.6.1", False),
        ("league/commonmark", "2.4.1", "pkg:composer/league/commonmark@2.4.1", False),
        ("mockery/mockery", "1.6.6", "pkg:composer/mockery/mockery@1.6.6", True),
        ("phpstan/phpstan", "1.10.39", "pkg:composer/phpstan/phpstan@1.10.39", True),
        ("psr/http-message", "2.0", "pkg:composer/psr/http-message@2.0", False),
        ("symfony/console", "v6.3.4", "pkg:composer/symfony/console@v6.3.4", False),
    ]
    assert [(p.name, p.version, p.purl, p.dev) for p in r.packages] == expected
    assert {(p.found_in, p.ecosystem) for p in r.packages} == {("composer.lock", "Packagist")}
    # the same tree inside an image: only installed.json counts there
    files = [I.file(f"app/{p.relative_to(root).as_posix()}", p.read_bytes()) for p in root.rglob("*") if p.is_file()]
    layout = I.write_oci_layout(tmp_path / "img", I.image([I.layer(files)]))
    assert [p for p in scan(ScanRequest(f"oci:{layout}"))[0].packages if p.type == "composer"] == []
    assert [
        (p.name, p.version, p.purl, p.dev) for p in scan(ScanRequest(f"dir:{root}"))[0].packages if p.type == "composer"
    ] == expected
