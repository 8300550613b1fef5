"""Deterministic ids: the same facts always give the same id, in every process and on every platform.

Every stored document is named by a fingerprint of what it is about, so writing
it twice (a trigger delivered twice, a worker retried) is an idempotent upsert,
and an alert is created at most once (create-if-absent on its id).

A fingerprint is the hex SHA-256 of its fields joined with the ASCII unit
separator (0x1F), prefixed by the kind of document, so two kinds never share
an id even when their fields happen to be equal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from shared import __version__

_SEP = "\x1f"


def _digest(kind: str, *fields: str) -> str:
    h = hashlib.sha256(kind.encode())
    for f in fields:
        h.update(_SEP.encode())
        h.update(f.encode())
    return h.hexdigest()


def finding_id(image_digest: str, package_purl: str, found_in: str, vulnerability_id: str) -> str:
    """One vulnerability in one package instance (purl and the file it was read from) of one image."""
    return _digest("finding", image_digest, package_purl, found_in, vulnerability_id)


def alert_id(alert_type: str, image_digest: str, vulnerability_id: str, package_purl: str, found_in: str) -> str:
    """One alert of one type about one finding: the same change never alerts twice."""
    return _digest("alert", alert_type, image_digest, vulnerability_id, package_purl, found_in)


def analyzer_set(analyzers: Mapping[str, int]) -> str:
    """The (name, version) set of the analyzers that ran, plus the hullwatch version (the layer engine's)."""
    parts = [f"{name}={version}" for name, version in sorted(analyzers.items())]
    return _digest("analyzers", __version__, *parts)


def layer_chain_key(diff_ids: Iterable[str], analyzers: Mapping[str, int]) -> str:
    """An ordered stack of layers analysed by one analyzer set: the same stack is the same final view."""
    return "chain-" + _digest("chain", analyzer_set(analyzers), *diff_ids)


def _blob_name(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    return f"{algo}/{hexpart}" if hexpart else algo


def inventory_key(image_digest: str) -> str:
    """Blob key of an image's stored inventory (its ScanResult as JSON)."""
    return f"inventories/{_blob_name(image_digest)}.json"
