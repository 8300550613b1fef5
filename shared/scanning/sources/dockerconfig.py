"""Registry credentials from a Docker client configuration (``config.json``).

Where: the path given (a file, or a directory holding ``config.json``), else
``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``. A missing
default file simply means no credentials; a missing file that was named
explicitly is an error.

For a registry host, the first of these that knows it wins, as in the Docker CLI:

1. ``credHelpers[host]``: run ``docker-credential-NAME get`` with the server on stdin;
2. ``credsStore``: the same with the default helper;
3. ``auths[server]``: ``auth`` (base64 ``user:password``) or ``username``/``password``,
   and ``identitytoken`` (an OAuth2 refresh token for the Bearer flow).

A helper is run only when its executable is on ``PATH``; one that is not there
is passed over. A helper's answer with ``Username`` ``<token>`` carries an
identity token. Docker Hub's key is ``https://index.docker.io/v1/``; other
registries are keyed by host (``host:port``), with or without a scheme or path.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.scanning.errors import ImageError
from shared.scanning.reference import DOCKER_HUB
from shared.scanning.sources.registry_auth import Credentials, one_line

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_ALIASES = frozenset({"index.docker.io", "docker.io", "registry-1.docker.io", "registry.hub.docker.com"})
HELPER_TIMEOUT_SECONDS = 30
MAX_CONFIG_FILE_BYTES = 4 * 1024 * 1024


class DockerConfigError(ImageError):
    """The docker config file, or a credential helper it names, is unusable. ``subject`` is the file."""


@dataclass
class DockerConfig:
    path: Path
    auths: dict[str, dict[str, Any]] = field(default_factory=dict)
    cred_helpers: dict[str, str] = field(default_factory=dict)
    creds_store: str | None = None

    def credentials_for(self, registry: str) -> Credentials | None:
        """Credentials for a registry host (``host[:port]``), or None if the config has none."""
        want = normalize_server(registry)
        helper = next((name for key, name in self.cred_helpers.items() if normalize_server(key) == want), None)
        server = DOCKER_HUB_KEY if want == "docker.io" else registry
        for name in (helper, self.creds_store):
            if name:
                creds = run_helper(name, server, self.path)
                if creds is not None:
                    return creds
        return self._from_auths(want)

    def _from_auths(self, want: str) -> Credentials | None:
        matches = [(key, entry) for key, entry in self.auths.items() if normalize_server(key) == want]
        # an exact key ("host:port" as the user logged in) before "https://host:port/v2/"-style ones
        matches.sort(key=lambda kv: kv[0] != want and kv[0] != DOCKER_HUB_KEY)
        for key, entry in matches:
            creds = self._entry_credentials(key, entry)
            if creds is not None:
                return creds
        return None

    def _entry_credentials(self, key: str, entry: dict[str, Any]) -> Credentials | None:
        origin = f"docker config {self.path}"
        username = entry.get("username") if isinstance(entry.get("username"), str) else None
        password = entry.get("password") if isinstance(entry.get("password"), str) else None
        auth = entry.get("auth")
        if isinstance(auth, str) and auth:
            try:
                decoded = base64.b64decode(auth, validate=False).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise DockerConfigError(str(self.path), f"auths[{key!r}].auth is not base64 user:password") from None
            user, sep, pw = decoded.partition(":")
            if not sep:
                raise DockerConfigError(str(self.path), f"auths[{key!r}].auth is not base64 user:password")
            username, password = user, pw
        token = entry.get("identitytoken")
        identity = token if isinstance(token, str) and token else None
        if not username and identity is None:
            return None
        return Credentials(username or None, password, identity, origin)


def normalize_server(server: str) -> str:
    """``https://Host:5000/v2/`` -> ``host:5000``; every Docker Hub alias -> ``docker.io``."""
    s = server.strip().lower()
    for prefix in ("https://", "http://"):
        if s.startswith(prefix):
            s = s[len(prefix) :]
    s = s.split("/", 1)[0]
    return "docker.io" if s in _HUB_ALIASES else s


def default_config_path(explicit: str | None = None) -> tuple[Path, bool]:
    """(path, whether the user named it)."""
    if explicit:
        p = Path(explicit).expanduser()
        return (p / "config.json" if p.is_dir() else p), True
    env = os.environ.get("DOCKER_CONFIG")
    if env:
        return Path(env).expanduser() / "config.json", False
    return Path.home() / ".docker" / "config.json", False


def load(explicit: str | None = None) -> DockerConfig | None:
    """The docker config, or None when there is none at the default place."""
    path, named = default_config_path(explicit)
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_CONFIG_FILE_BYTES + 1)
    except FileNotFoundError:
        if named:
            raise DockerConfigError(str(path), "docker config file not found") from None
        return None
    except OSError as exc:
        raise DockerConfigError(str(path), f"cannot read docker config ({exc.strerror or exc})") from None
    if len(data) > MAX_CONFIG_FILE_BYTES:
        raise DockerConfigError(str(path), f"docker config is over {MAX_CONFIG_FILE_BYTES} bytes")
    try:
        doc = json.loads(data) if data.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise DockerConfigError(str(path), f"docker config is not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise DockerConfigError(str(path), "docker config is not a JSON object")
    auths = doc.get("auths")
    helpers = doc.get("credHelpers")
    store = doc.get("credsStore")
    return DockerConfig(
        path=path,
        auths={k: v for k, v in auths.items() if isinstance(k, str) and isinstance(v, dict)}
        if isinstance(auths, dict)
        else {},
        cred_helpers={k: v for k, v in helpers.items() if isinstance(k, str) and isinstance(v, str) and v}
        if isinstance(helpers, dict)
        else {},
        creds_store=store if isinstance(store, str) and store else None,
    )


def credentials_for(registry: str, config_path: str | None = None) -> Credentials | None:
    """Credentials for ``registry`` (as in a reference: ``registry-1.docker.io``, ``host:5000``)."""
    cfg = load(config_path)
    if cfg is None:
        return None
    return cfg.credentials_for(DOCKER_HUB if normalize_server(registry) == "docker.io" else registry)


def run_helper(name: str, server: str, config_path: Path) -> Credentials | None:
    """Ask ``docker-credential-NAME`` for ``server``; None if it is not on PATH or has nothing."""
    if not name or "/" in name or "\\" in name:
        raise DockerConfigError(str(config_path), f"bad credential helper name {name!r}")
    exe = shutil.which(f"docker-credential-{name}")
    if exe is None:
        return None
    what = f"credential helper docker-credential-{name}"
    try:
        proc = subprocess.run(
            [exe, "get"],
            input=server.encode(),
            capture_output=True,
            timeout=HELPER_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DockerConfigError(
            str(config_path), f"{what} did not answer within {HELPER_TIMEOUT_SECONDS} seconds"
        ) from None
    except OSError as exc:
        raise DockerConfigError(str(config_path), f"cannot run {what} ({exc.strerror or exc})") from None
    out = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        text = (out + " " + proc.stderr.decode("utf-8", "replace")).strip()
        if "credentials not found" in text.lower():
            return None
        raise DockerConfigError(
            str(config_path), f"{what} failed (exit {proc.returncode}): {one_line(text) or 'no message'}"
        )
    try:
        doc = json.loads(out)
    except ValueError:
        raise DockerConfigError(str(config_path), f"{what} printed something that is not JSON") from None
    if not isinstance(doc, dict):
        raise DockerConfigError(str(config_path), f"{what} printed something that is not a JSON object")
    user, secret = doc.get("Username"), doc.get("Secret")
    if not isinstance(secret, str) or not secret:
        return None
    if user == "<token>":
        return Credentials(None, None, secret, what)
    if not isinstance(user, str) or not user:
        return None
    return Credentials(user, secret, None, what)
