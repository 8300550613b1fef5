"""OS identification files: os-release, alpine-release, debian_version, redhat-release."""

from __future__ import annotations

import re
import shlex

from shared.domain.models import OSInfo

# os-release IDs that name the same family for vulnerability purposes.
_ID_ALIASES = {
    "opensuse": "opensuse-leap",
    "sle_hpc": "sles",
    "sled": "sles",
    "amazon": "amzn",
    "redhat": "rhel",
    "azl": "azurelinux",
}


def parse_os_release(data: bytes, path: str) -> OSInfo | None:
    """Parse an os-release file (shell-style KEY=value lines). None if it has no ID."""
    fields: dict[str, str] = {}
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            parts = shlex.split(value, posix=True)
            value = parts[0] if parts else ""
        except ValueError:
            value = value.strip().strip("\"'")
        fields[key.strip()] = value
    family = fields.get("ID", "").lower()
    if not family:
        return None
    family = _ID_ALIASES.get(family, family)
    pretty = fields.get("PRETTY_NAME", "")
    return OSInfo(
        family=family,
        name=fields.get("NAME", ""),
        version_id=fields.get("VERSION_ID", ""),
        codename=fields.get("VERSION_CODENAME", ""),
        pretty_name=pretty,
        distroless=pretty.lower().startswith("distroless"),
        found_in=path,
    )


def parse_alpine_release(data: bytes, path: str) -> OSInfo | None:
    v = data.decode("utf-8", "replace").strip()
    if not v:
        return None
    return OSInfo(family="alpine", name="Alpine Linux", version_id=v.split()[0], found_in=path)


def parse_debian_version(data: bytes, path: str) -> OSInfo | None:
    v = data.decode("utf-8", "replace").strip()
    if not v:
        return None
    # "12.5" -> 12.5; "bookworm/sid" (testing) -> no numeric release
    version = v if re.match(r"^\d+(\.\d+)*$", v) else ""
    return OSInfo(
        family="debian",
        name="Debian GNU/Linux",
        version_id=version,
        codename=v if not version else "",
        found_in=path,
    )


_RELEASE_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^Red Hat Enterprise Linux.*release (\d+(?:\.\d+)*)", re.I), "rhel"),
    (re.compile(r"^CentOS (?:Linux|Stream) release (\d+(?:\.\d+)*)", re.I), "centos"),
    (re.compile(r"^Rocky Linux release (\d+(?:\.\d+)*)", re.I), "rocky"),
    (re.compile(r"^AlmaLinux release (\d+(?:\.\d+)*)", re.I), "almalinux"),
    (re.compile(r"^Fedora release (\d+)", re.I), "fedora"),
    (re.compile(r"^Amazon Linux (?:AMI )?release (\d+(?:\.\d+)*)", re.I), "amzn"),
    (re.compile(r"^Oracle Linux Server release (\d+(?:\.\d+)*)", re.I), "ol"),
    (re.compile(r"^CBL-Mariner release (\d+(?:\.\d+)*)", re.I), "mariner"),
]


def parse_redhat_release(data: bytes, path: str) -> OSInfo | None:
    text = data.decode("utf-8", "replace").strip()
    for pattern, family in _RELEASE_PATTERNS:
        m = pattern.match(text)
        if m:
            return OSInfo(
                family=family,
                name=text.split(" release")[0],
                version_id=m.group(1),
                pretty_name=text,
                found_in=path,
            )
    return None
