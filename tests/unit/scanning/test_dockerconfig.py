"""Credentials from a docker config.json: auths entries and credential helpers."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from shared.scanning.sources import dockerconfig
from shared.scanning.sources.dockerconfig import DockerConfigError, credentials_for, normalize_server
from shared.scanning.sources.registry_auth import Credentials


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No real ~/.docker, and a PATH holding only our helpers (plus sh for them)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin")


def write_config(path: Path, doc: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def helper(tmp_path: Path, name: str, script: str) -> Path:
    """A docker-credential-NAME shell script on PATH; it logs what it was asked."""
    p = tmp_path / "bin" / f"docker-credential-{name}"
    p.write_text("#!/bin/sh\n" + script)
    p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return p


def test_auths_with_base64_auth(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "c" / "config.json",
        {"auths": {"registry.example.com:5000": {"auth": b64("alice:s3cr:et")}}},
    )
    creds = credentials_for("registry.example.com:5000", str(cfg))
    assert creds == Credentials("alice", "s3cr:et", None, f"docker config {cfg}")


def test_auths_with_username_password_and_keys_with_scheme_and_path(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "config.json",
        {"auths": {"https://Registry.Example.com/v2/": {"username": "bob", "password": "pw"}}},
    )
    creds = credentials_for("registry.example.com", str(cfg))
    assert creds is not None and (creds.username, creds.password) == ("bob", "pw")
    assert credentials_for("other.example.com", str(cfg)) is None


def test_docker_hub_key(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.json", {"auths": {"https://index.docker.io/v1/": {"auth": b64("hub:pw")}}})
    creds = credentials_for("registry-1.docker.io", str(cfg))
    assert creds is not None and creds.username == "hub"


def test_identity_token(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.json", {"auths": {"acr.example.io": {"identitytoken": "refresh"}}})
    creds = credentials_for("acr.example.io", str(cfg))
    assert creds is not None
    assert creds.identity_token == "refresh" and creds.username is None


def test_empty_entry_means_no_credentials(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.json", {"auths": {"r.example.com": {}}})
    assert credentials_for("r.example.com", str(cfg)) is None


def test_directory_docker_config_env_and_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "dcfg"
    write_config(d / "config.json", {"auths": {"r.example.com": {"auth": b64("dir:pw")}}})
    creds = credentials_for("r.example.com", str(d))
    assert creds is not None and creds.username == "dir"

    monkeypatch.setenv("DOCKER_CONFIG", str(d))
    creds = credentials_for("r.example.com")
    assert creds is not None and creds.username == "dir"

    monkeypatch.delenv("DOCKER_CONFIG")
    assert credentials_for("r.example.com") is None  # no ~/.docker/config.json: fine
    write_config(tmp_path / "home" / ".docker" / "config.json", {"auths": {"r.example.com": {"auth": b64("h:pw")}}})
    creds = credentials_for("r.example.com")
    assert creds is not None and creds.username == "h"


def test_explicit_missing_or_broken_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DockerConfigError) as exc:
        credentials_for("r.example.com", str(tmp_path / "nope.json"))
    assert "not found" in str(exc.value)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DockerConfigError) as exc:
        credentials_for("r.example.com", str(bad))
    assert "not valid JSON" in str(exc.value)
    cfg = write_config(tmp_path / "c.json", {"auths": {"r.example.com": {"auth": b64("no-colon")}}})
    with pytest.raises(DockerConfigError):
        credentials_for("r.example.com", str(cfg))


def test_credential_helper_on_path(tmp_path: Path) -> None:
    log = tmp_path / "asked"
    helper(
        tmp_path,
        "test",
        f'[ "$1" = get ] || exit 3\ncat > {log}\n'
        'printf \'{"ServerURL":"x","Username":"helper-user","Secret":"helper-secret"}\'\n',
    )
    cfg = write_config(
        tmp_path / "config.json",
        {
            "credHelpers": {"registry.example.com": "test"},
            "auths": {"registry.example.com": {"auth": b64("file:pw")}},
        },
    )
    creds = credentials_for("registry.example.com", str(cfg))
    assert creds == Credentials("helper-user", "helper-secret", None, "credential helper docker-credential-test")
    assert log.read_text() == "registry.example.com"


def test_creds_store_for_docker_hub_with_identity_token(tmp_path: Path) -> None:
    log = tmp_path / "asked"
    helper(
        tmp_path,
        "store",
        f'cat > {log}\nprintf \'{{"ServerURL":"x","Username":"<token>","Secret":"idtok"}}\'\n',
    )
    cfg = write_config(tmp_path / "config.json", {"credsStore": "store"})
    creds = credentials_for("registry-1.docker.io", str(cfg))
    assert creds is not None and creds.identity_token == "idtok" and creds.username is None
    assert log.read_text() == "https://index.docker.io/v1/"


def test_helper_not_found_falls_back_to_auths(tmp_path: Path) -> None:
    helper(tmp_path, "empty", 'echo "credentials not found in native keychain"\nexit 1\n')
    cfg = write_config(
        tmp_path / "config.json",
        {"credsStore": "empty", "auths": {"r.example.com": {"auth": b64("file:pw")}}},
    )
    creds = credentials_for("r.example.com", str(cfg))
    assert creds is not None and creds.username == "file"


def test_helper_missing_from_path_is_passed_over(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "config.json",
        {"credHelpers": {"r.example.com": "not-installed"}, "auths": {"r.example.com": {"auth": b64("f:pw")}}},
    )
    creds = credentials_for("r.example.com", str(cfg))
    assert creds is not None and creds.username == "f"


def test_failing_helper_is_a_one_line_error(tmp_path: Path) -> None:
    helper(tmp_path, "broken", 'echo "the keychain is locked" >&2\necho "second line" >&2\nexit 2\n')
    cfg = write_config(tmp_path / "config.json", {"credHelpers": {"r.example.com": "broken"}})
    with pytest.raises(DockerConfigError) as exc:
        credentials_for("r.example.com", str(cfg))
    msg = str(exc.value)
    assert "\n" not in msg
    assert "docker-credential-broken failed (exit 2): the keychain is locked second line" in msg


def test_helper_printing_garbage(tmp_path: Path) -> None:
    helper(tmp_path, "garbage", "echo hello\n")
    cfg = write_config(tmp_path / "config.json", {"credHelpers": {"r.example.com": "garbage"}})
    with pytest.raises(DockerConfigError) as exc:
        credentials_for("r.example.com", str(cfg))
    assert "not JSON" in str(exc.value)


def test_helper_names_cannot_be_paths(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.json", {"credHelpers": {"r.example.com": "../../bin/sh"}})
    with pytest.raises(DockerConfigError):
        credentials_for("r.example.com", str(cfg))


@pytest.mark.parametrize(
    ("server", "want"),
    [
        ("https://index.docker.io/v1/", "docker.io"),
        ("docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("http://localhost:5000/v2/", "localhost:5000"),
        ("GHCR.io", "ghcr.io"),
    ],
)
def test_normalize_server(server: str, want: str) -> None:
    assert normalize_server(server) == want


def test_load_ignores_malformed_sections(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.json", {"auths": [], "credHelpers": "x", "credsStore": 3})
    loaded = dockerconfig.load(str(cfg))
    assert loaded is not None
    assert (loaded.auths, loaded.cred_helpers, loaded.creds_store) == ({}, {}, None)
