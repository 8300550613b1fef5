"""Red Hat, Fedora, CentOS, Amazon Linux, SUSE... packages from the rpm database.

rpm keeps its database in one of three formats, told apart by file name:
``rpmdb.sqlite`` (rpm 4.16+), ``Packages`` (Berkeley DB) and ``Packages.db``
(SUSE's ndb). Either of two directories may hold it.
"""

from __future__ import annotations

from typing import ClassVar

from shared.domain.models import Package, ScanWarning
from shared.scanning.analyzers.base import AnalysisResult, Analyzer, FileInput, register
from shared.scanning.parsers.rpm import RpmdbError, RpmHeader, kind_of, read_rpmdb

_DIRS = ("var/lib/rpm", "usr/lib/sysimage/rpm")
_FILES = ("rpmdb.sqlite", "Packages", "Packages.db")

#: Public keys imported with ``rpm --import`` appear as packages of this name.
GPG_PUBKEY = "gpg-pubkey"


def split_srpm(source_rpm: str) -> tuple[str, str] | None:
    """(name, version-release) of a source rpm file name such as ``bash-5.1.8-6.el9.src.rpm``."""
    for suffix in (".src.rpm", ".nosrc.rpm"):
        if source_rpm.endswith(suffix):
            stem = source_rpm[: -len(suffix)]
            break
    else:
        return None
    parts = stem.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return None
    name, version, release = parts
    return name, f"{version}-{release}"


def to_package(h: RpmHeader, path: str) -> Package:
    version = f"{h.epoch}:{h.version}-{h.release}" if h.epoch else f"{h.version}-{h.release}"
    source_name = source_version = None
    if h.source_rpm:
        split = split_srpm(h.source_rpm)
        if split:
            source_name, source_version = split
    return Package(
        type="rpm",
        name=h.name,
        version=version,
        epoch=h.epoch,
        release=h.release,
        arch=h.arch or None,
        source_rpm=h.source_rpm or None,
        source_name=source_name,
        source_version=source_version,
        licenses=[h.license] if h.license else [],
        vendor=h.vendor or None,
        modularity_label=h.modularity_label or None,
        purl="",
        found_in=path,
    )


@register
class RpmAnalyzer(Analyzer):
    name = "rpm"
    version = 1
    paths: ClassVar[frozenset[str]] = frozenset(f"{d}/{f}" for d in _DIRS for f in _FILES)
    max_file_size = 256 * 1024 * 1024

    def analyze(self, file: FileInput) -> AnalysisResult:
        kind = kind_of(file.path)
        if kind is None:
            return AnalysisResult()
        try:
            headers = read_rpmdb(kind, file.content)
        except RpmdbError as exc:
            return AnalysisResult(
                warnings=[
                    ScanWarning(
                        code="parse-error",
                        message=f"{file.path}: not a readable rpm database: {exc}",
                        layer_diff_id=file.layer_diff_id,
                        path=file.path,
                    )
                ]
            )
        return AnalysisResult(packages=[to_package(h, file.path) for h in headers if h.name != GPG_PUBKEY])
