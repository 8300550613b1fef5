"""The inventory a scan produces, as pydantic models.

These models are the contract of ``hullwatch scan --format json``: the JSON Schema
in ``shared/schemas/scan-result.schema.json`` is generated from them
(``python -m shared.domain.schema``) and a test fails when the two drift apart.
Bump :data:`SCHEMA_VERSION` on any incompatible change.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.findings import Finding

SCHEMA_VERSION = "1"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class OSInfo(_Model):
    """The distribution an image is built on."""

    family: str = Field(description="Normalised distribution id: debian, ubuntu, alpine, rhel, fedora, ...")
    name: str = Field(default="", description="Human name, e.g. 'Debian GNU/Linux'.")
    version_id: str = Field(default="", description="VERSION_ID or the release file's version.")
    codename: str = Field(default="", description="VERSION_CODENAME where known.")
    pretty_name: str = Field(default="")
    distroless: bool = Field(default=False, description="No shell or package manager; package data only.")
    found_in: str = Field(default="", description="The file the OS was identified from.")


class Package(_Model):
    """One installed package instance found in the image."""

    type: str = Field(description="Analyzer package type: dpkg, apk, rpm, ...")
    name: str
    version: str = Field(description="Full version as the ecosystem compares it (epoch included).")
    epoch: int | None = Field(default=None, description="Epoch where the format has one.")
    release: str | None = Field(default=None, description="rpm release.")
    arch: str | None = None
    source_name: str | None = Field(default=None, description="Source package (dpkg Source, apk origin, SRPM).")
    source_version: str | None = None
    licenses: list[str] = Field(default_factory=list)
    vendor: str | None = None
    modularity_label: str | None = None
    source_rpm: str | None = None
    ecosystem: str | None = Field(default=None, description="OSV ecosystem, e.g. 'Debian:12', 'Alpine:v3.19'.")
    purl: str = Field(description="Package URL per the purl specification.")
    found_in: str = Field(description="The database or manifest file the package was read from.")
    dev: bool = Field(default=False, description="A development-only dependency (left out of matching by default).")
    layer_diff_id: str | None = Field(default=None, description="diff_id of the layer that introduced it.")
    layer_index: int | None = Field(default=None, description="0-based index of that layer.")


class Executable(_Model):
    """A file of the final image view that can be executed (an execute bit, or ELF)."""

    path: str
    size: int
    mode: int = Field(description="Permission bits, e.g. 493 for 0o755.")
    sha256: str = Field(description="Hex sha256 of the content.")
    elf: bool = Field(default=False, description="Starts with the ELF magic.")
    layer_index: int | None = None
    layer_diff_id: str | None = None


class LayerInfo(_Model):
    index: int
    digest: str | None = Field(default=None, description="Digest of the layer blob as stored.")
    diff_id: str | None = Field(default=None, description="Digest of the uncompressed tar.")
    media_type: str | None = None
    size: int | None = None
    created_by: str | None = None


class ImageInfo(_Model):
    reference: str = Field(description="The image as the user named it.")
    source: str = Field(description="registry, oci, docker-archive or dir.")
    registry: str | None = None
    repository: str | None = None
    tag: str | None = None
    digest: str | None = Field(default=None, description="Manifest digest.")
    index_digest: str | None = Field(default=None, description="Digest of the index the manifest came from.")
    manifest_media_type: str | None = None
    config_digest: str | None = None
    platform: str | None = Field(default=None, description="os/arch[/variant].")
    layers: list[LayerInfo] = Field(default_factory=list)


class ScanWarning(_Model):
    """Something the scan passed over but the user should know about."""

    code: str = Field(description="Stable machine-readable code, e.g. 'path-escape', 'parse-error'.")
    message: str
    layer_diff_id: str | None = None
    path: str | None = None


class VulnDBInfo(_Model):
    path: str
    schema_version: int
    newest_modified: str | None = None
    advisories: int = 0


class ToolInfo(_Model):
    name: str = "hullwatch"
    version: str


class ScanResult(_Model):
    schema_version: str = SCHEMA_VERSION
    tool: ToolInfo
    scanned_at: datetime
    image: ImageInfo
    os: OSInfo | None = None
    packages: list[Package] = Field(default_factory=list)
    analyzers: dict[str, int] = Field(default_factory=dict, description="Analyzer name -> version used.")
    executables: list[Executable] | None = Field(
        default=None, description="Executable files of the final view; present with --executables."
    )
    findings: list[Finding] | None = Field(
        default=None, description="Vulnerabilities, highest priority first; absent when no database was used."
    )
    vulnerability_db: VulnDBInfo | None = None
    warnings: list[ScanWarning] = Field(default_factory=list)


class ScanReport(_Model):
    """What ``hullwatch scan --format json`` prints: one result per image (per platform)."""

    schema_version: str = SCHEMA_VERSION
    results: list[ScanResult]
