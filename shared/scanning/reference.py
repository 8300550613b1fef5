"""Parsing what the user names as an image.

``REGISTRY/REPO[:TAG|@DIGEST]`` (registry), ``oci:PATH[:TAG]`` (OCI image
layout), ``docker-archive:FILE`` (``docker save`` output), ``dir:PATH`` (a root
filesystem or source tree). Registry references follow the distribution
reference grammar: the first component is a registry host when it contains a
dot or a colon or is ``localhost``; otherwise the image is on Docker Hub.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.errors import UsageError

DOCKER_HUB = "registry-1.docker.io"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_HOST_RE = re.compile(r"^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")


@dataclass(frozen=True)
class RegistryRef:
    registry: str
    repository: str
    tag: str | None
    digest: str | None
    original: str

    @property
    def reference(self) -> str:
        """The manifest reference to request: the digest if given, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        return self.original


@dataclass(frozen=True)
class LocalRef:
    transport: str  # "oci", "docker-archive" or "dir"
    path: str
    tag: str | None
    original: str

    def __str__(self) -> str:
        return self.original


ImageRef = RegistryRef | LocalRef


def parse(text: str) -> ImageRef:
    original = text
    if not text or text != text.strip():
        raise UsageError(repr(text), "not an image reference (empty or surrounded by spaces)")
    for transport in ("oci", "docker-archive", "dir"):
        prefix = transport + ":"
        if text.startswith(prefix):
            rest = text[len(prefix) :]
            if not rest:
                raise UsageError(original, f"{transport}: needs a path")
            tag = None
            if transport == "oci":
                # oci:PATH[:TAG] - a tag never contains '/', a path usually does.
                head, sep, tail = rest.rpartition(":")
                if sep and head and "/" not in tail and _TAG_RE.match(tail):
                    rest, tag = head, tail
            return LocalRef(transport, rest, tag, original)
    return _parse_registry(text, original)


def _parse_registry(text: str, original: str) -> RegistryRef:
    name, digest = text, None
    if "@" in text:
        name, digest = text.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise UsageError(original, f"malformed digest {digest!r}")
    tag = None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
        if not _TAG_RE.match(tag):
            raise UsageError(original, f"malformed tag {tag!r}")
    first, sep, remainder = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        if not _HOST_RE.match(first):
            raise UsageError(original, f"malformed registry host {first!r}")
        registry, repo = first, remainder
    else:
        registry, repo = DOCKER_HUB, name
        if "/" not in repo:
            repo = "library/" + repo
    if not _REPO_RE.match(repo):
        raise UsageError(original, f"malformed repository name {repo!r} (lowercase letters, digits, . _ - /)")
    if registry in ("docker.io", "index.docker.io"):
        registry = DOCKER_HUB
        if "/" not in repo:
            repo = "library/" + repo
    if tag is None and digest is None:
        tag = "latest"
    return RegistryRef(registry, repo, tag, digest, original)
