"""The one table: package type -> purl type and namespace -> OSV ecosystem.

Analyzers say *what* they found (a dpkg package, an rpm); this table says how
that is named for vulnerability matching (the OSV ecosystem string) and for
SBOMs (the purl). Adding an OS or an ecosystem is one row here, one analyzer
module, and one line in ``shared/scanning/analyzers/all.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from packageurl import PackageURL

from shared.domain.models import OSInfo


def _major(version_id: str) -> str:
    return version_id.split(".", 1)[0]


def _major_minor(version_id: str) -> str:
    return ".".join(version_id.split(".")[:2])


def _debian(os: OSInfo) -> str:
    major = _major(os.version_id)
    return f"Debian:{major}" if major.isdigit() else "Debian"


def _ubuntu(os: OSInfo) -> str:
    vid = os.version_id
    if not vid:
        return "Ubuntu"
    # OSV suffixes long-term-support releases (even year, April) with ':LTS'.
    year, _, month = vid.partition(".")
    lts = month == "04" and year.isdigit() and int(year) % 2 == 0
    return f"Ubuntu:{vid}:LTS" if lts else f"Ubuntu:{vid}"


def _alpine(os: OSInfo) -> str:
    mm = _major_minor(os.version_id)
    return f"Alpine:v{mm}" if mm and mm[0].isdigit() else "Alpine"


def _versioned(name: str, major_only: bool = True) -> Callable[[OSInfo], str]:
    def fn(os: OSInfo) -> str:
        v = _major(os.version_id) if major_only else os.version_id
        return f"{name}:{v}" if v else name

    return fn


def _const(name: str) -> Callable[[OSInfo], str]:
    return lambda _os: name


@dataclass(frozen=True)
class Distro:
    """How one OS family names its packages."""

    purl_namespace: str
    osv_ecosystem: Callable[[OSInfo], str]


# OS family (os-release ID, normalised) -> naming. Families not listed still get
# purls (namespace = family) but no OSV ecosystem, so they never match the
# wrong distribution's advisories.
DISTROS: dict[str, Distro] = {
    "debian": Distro("debian", _debian),
    "ubuntu": Distro("ubuntu", _ubuntu),
    "alpine": Distro("alpine", _alpine),
    "wolfi": Distro("wolfi", _const("Wolfi")),
    "chainguard": Distro("chainguard", _const("Chainguard")),
    "rhel": Distro("redhat", _const("Red Hat")),
    "centos": Distro("centos", _const("Red Hat")),
    "rocky": Distro("rocky", _versioned("Rocky Linux")),
    "almalinux": Distro("almalinux", _versioned("AlmaLinux")),
    "fedora": Distro("fedora", _versioned("Fedora")),
    "sles": Distro("suse", _const("SUSE")),
    "opensuse-leap": Distro("opensuse", _const("openSUSE")),
    "opensuse-tumbleweed": Distro("opensuse", _const("openSUSE")),
    "opensuse": Distro("opensuse", _const("openSUSE")),
    "azurelinux": Distro("azurelinux", _versioned("Azure Linux")),
    "mariner": Distro("mariner", _versioned("Azure Linux")),
    # Amazon Linux publishes ALAS, not OSV; the name keeps its release apart.
    "amzn": Distro("amazon", _versioned("Amazon Linux")),
    "ol": Distro("oracle", _versioned("Oracle Linux")),
    "photon": Distro("photon", _versioned("Photon OS", major_only=False)),
    "openeuler": Distro("openeuler", _versioned("openEuler", major_only=False)),
}

# Package type -> purl type, for the OS package managers (one per analyzer type).
OS_PACKAGE_PURL_TYPES: dict[str, str] = {"dpkg": "deb", "apk": "apk", "rpm": "rpm"}


@dataclass(frozen=True)
class Language:
    """How one language ecosystem names packages: purl type and OSV ecosystem."""

    purl_type: str
    osv_ecosystem: str


# Package type (what language analyzers put in Package.type) -> naming.
LANGUAGES: dict[str, Language] = {
    "python": Language("pypi", "PyPI"),
    "npm": Language("npm", "npm"),
    "golang": Language("golang", "Go"),
    "maven": Language("maven", "Maven"),
    "gem": Language("gem", "RubyGems"),
    "composer": Language("composer", "Packagist"),
    "cargo": Language("cargo", "crates.io"),
    "nuget": Language("nuget", "NuGet"),
}


def osv_ecosystem(package_type: str, os: OSInfo | None) -> str | None:
    """The OSV ecosystem of a package, or None when it cannot be named (an OS package of an unknown OS)."""
    lang = LANGUAGES.get(package_type)
    if lang is not None:
        return lang.osv_ecosystem
    if package_type in OS_PACKAGE_PURL_TYPES:
        if os is None:
            return None
        distro = DISTROS.get(os.family)
        return distro.osv_ecosystem(os) if distro else None
    return None


def pep503(name: str) -> str:
    """PEP 503 normalised name: lowercase, runs of '-', '_' and '.' become one '-'."""
    out = []
    prev_sep = False
    for ch in name.lower():
        if ch in "-_.":
            if not prev_sep:
                out.append("-")
            prev_sep = True
        else:
            out.append(ch)
            prev_sep = False
    return "".join(out)


def language_purl(package_type: str, name: str, version: str | None) -> str:
    """A purl for a language package, namespaced the way the purl spec says for each type.

    Names are given as the ecosystem writes them: ``@scope/name`` (npm),
    ``group:artifact`` (Maven), ``vendor/name`` (Composer), a module path (Go).
    """
    lang = LANGUAGES[package_type]
    namespace: str | None = None
    n = name
    if lang.purl_type == "npm" and n.startswith("@") and "/" in n:
        namespace, n = n.split("/", 1)
    elif lang.purl_type == "maven" and ":" in n:
        namespace, n = n.split(":", 1)
    elif lang.purl_type in ("composer", "golang") and "/" in n:
        namespace, n = n.rsplit("/", 1)
    elif lang.purl_type == "pypi":
        n = pep503(n)
    return PackageURL(type=lang.purl_type, namespace=namespace, name=n, version=version or None).to_string()


def os_purl(
    package_type: str,
    os: OSInfo | None,
    name: str,
    version: str,
    arch: str | None = None,
    *,
    epoch: int | None = None,
    extra_qualifiers: dict[str, str] | None = None,
) -> str:
    """A purl for an OS package, with the ``distro`` qualifier the purl spec describes."""
    purl_type = OS_PACKAGE_PURL_TYPES[package_type]
    namespace = None
    qualifiers: dict[str, str] = {}
    if os is not None:
        distro = DISTROS.get(os.family)
        namespace = distro.purl_namespace if distro else os.family
        if os.version_id:
            qualifiers["distro"] = f"{os.family}-{os.version_id}"
    if arch:
        qualifiers["arch"] = arch
    if epoch:
        qualifiers["epoch"] = str(epoch)
    if extra_qualifiers:
        qualifiers.update({k: v for k, v in extra_qualifiers.items() if v})
    return PackageURL(
        type=purl_type, namespace=namespace, name=name, version=version, qualifiers=qualifiers or None
    ).to_string()
