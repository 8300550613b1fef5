"""``docker-archive:FILE``: ``docker save`` output, legacy or OCI-style (Docker 25+).

The archive is a tar on local disk, so members are read in place (random
access, no extraction): ``manifest.json`` names the config and the layer tars;
legacy archives hold uncompressed ``<id>/layer.tar`` files whose digest is the
diff_id; OCI-style ones hold ``blobs/sha256/<hex>`` files named by their digest.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.domain.models import ImageInfo, ScanWarning
from shared.scanning import mediatypes as mt
from shared.scanning.errors import ImageError
from shared.scanning.layers import Entry
from shared.scanning.manifest import parse_config, sha256_digest, verify_bytes
from shared.scanning.reference import LocalRef
from shared.scanning.sources.base import ImageHandle, ImageSource, LayerRef, ScanOptions, blob_entries
from shared.scanning.streams import ByteBudget

_BLOB_PREFIX = "blobs/sha256/"


@dataclass
class DockerArchiveHandle(ImageHandle):
    archive: Path = field(default_factory=Path)
    members: dict[int, str] = field(default_factory=dict)

    def layer_entries(self, layer: LayerRef, budget: ByteBudget) -> Iterator[Entry]:
        subject = self.info.reference
        with _open(self.archive, subject) as tf:
            f = _member(tf, self.members[layer.index], subject)
            with f:
                yield from blob_entries(f, layer, subject, budget)


def _open(path: Path, subject: str) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r:*")
    except FileNotFoundError:
        raise ImageError(subject, f"{path} does not exist") from None
    except (tarfile.TarError, EOFError, OSError):
        raise ImageError(subject, f"{path} is not a readable tar archive (plain, gzip, bzip2 or xz)") from None


def _member(tf: tarfile.TarFile, name: str, subject: str) -> Any:
    try:
        f = tf.extractfile(name.lstrip("./") if name.startswith("./") else name)
    except KeyError:
        f = None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ImageError(subject, f"cannot read {name!r} from the archive ({exc})") from None
    if f is None:
        raise ImageError(subject, f"the archive has no file {name!r}")
    return f


def _read(tf: tarfile.TarFile, name: str, subject: str, limit: int) -> bytes:
    f = _member(tf, name, subject)
    with f:
        data: bytes = f.read(limit + 1)
    if len(data) > limit:
        raise ImageError(subject, f"{name} is over the {limit}-byte limit")
    return data


class DockerArchiveSource(ImageSource):
    def __init__(self, ref: LocalRef) -> None:
        self.ref = ref

    def resolve(self, options: ScanOptions) -> list[ImageHandle]:
        subject = self.ref.original
        path = Path(self.ref.path)
        if not path.is_file():
            raise ImageError(subject, f"{path} is not a file")
        warnings: list[ScanWarning] = []
        with _open(path, subject) as tf:
            try:
                manifest = json.loads(_read(tf, "manifest.json", subject, mt.MAX_MANIFEST_BYTES))
            except ValueError as exc:
                raise ImageError(subject, f"manifest.json is not valid JSON ({exc})") from None
            if not isinstance(manifest, list) or not manifest or not isinstance(manifest[0], dict):
                raise ImageError(subject, "manifest.json lists no images")
            if len(manifest) > 1:
                warnings.append(
                    ScanWarning(
                        code="multiple-images",
                        message=f"the archive holds {len(manifest)} images; scanning the first",
                    )
                )
            entry = manifest[0]
            config_name, layer_names = entry.get("Config"), entry.get("Layers")
            if not isinstance(config_name, str) or not isinstance(layer_names, list):
                raise ImageError(subject, "manifest.json entry lacks Config or Layers")
            config = _read(tf, config_name, subject, mt.MAX_CONFIG_BYTES)
            config_digest = _digest_from_name(config_name)
            if config_digest:
                verify_bytes(config, config_digest, f"{subject}: config")
            else:
                config_digest = sha256_digest(config)
            cfg = parse_config(config, subject)
            if len(cfg.diff_ids) != len(layer_names):
                raise ImageError(
                    subject,
                    f"manifest.json lists {len(layer_names)} layers but the config has {len(cfg.diff_ids)}",
                )
            layers, members = [], {}
            for i, name in enumerate(layer_names):
                if not isinstance(name, str):
                    raise ImageError(subject, f"layer {i} has no file name")
                try:
                    size = tf.getmember(name).size
                except KeyError:
                    raise ImageError(subject, f"the archive has no file {name!r} for layer {i}") from None
                # A blob named by digest is checked against that name; a legacy
                # layer.tar is the uncompressed layer, so its digest is the diff_id.
                layers.append(
                    LayerRef(
                        index=i,
                        digest=_digest_from_name(name) or cfg.diff_ids[i],
                        diff_id=cfg.diff_ids[i],
                        media_type=None,
                        size=size,
                        created_by=cfg.layer_history[i],
                    )
                )
                members[i] = name
        tags = entry.get("RepoTags") or []
        platform = "/".join(x for x in (cfg.os, cfg.architecture, cfg.variant) if x) or None
        info = ImageInfo(
            reference=subject,
            source="docker-archive",
            tag=tags[0] if tags and isinstance(tags[0], str) else None,
            config_digest=config_digest,
            platform=platform,
        )
        return [DockerArchiveHandle(info=info, layers=layers, warnings=warnings, archive=path, members=members)]


def _digest_from_name(name: str) -> str | None:
    if name.startswith(_BLOB_PREFIX):
        return "sha256:" + name[len(_BLOB_PREFIX) :]
    base = name.rsplit("/", 1)[-1]
    if base.endswith(".json") and len(base) == 64 + 5:
        return "sha256:" + base[:-5]
    return None
