"""Every bad input exits 2 with one readable line naming the image, and writes nothing outside a temp dir."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from tests.support import images as I
from tests.support.cli import Run, run_cli

STATUS = I.file("var/lib/dpkg/status", "Package: a\nStatus: install ok installed\nVersion: 1\n\n")


def assert_one_line_error(r: Run, image: str, *needles: str) -> None:
    assert r.code == 2, (r.code, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"hullwatch: error: {image}"), lines[0]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert "Traceback" not in r.stderr
    assert r.stdout == ""


def layout(tmp_path: Path, img: I.Image | I.IndexImage, tag: str = "latest") -> Path:
    return I.write_oci_layout(tmp_path / "input" / "img", img, tag=tag)


def check(tmp_path: Path, image: str, *needles: str) -> None:
    sandbox = tmp_path / "sandbox"
    r = run_cli(["scan", image], sandbox)
    assert_one_line_error(r, image, *needles)
    assert r.writes_outside(sandbox) == []


def test_unknown_tag(tmp_path: Path) -> None:
    p = layout(tmp_path, I.image([I.layer([STATUS])]))
    check(tmp_path, f"oci:{p}:nope", "tag 'nope' not found", "latest")


def test_corrupt_gzip(tmp_path: Path) -> None:
    lay = I.layer([STATUS])
    broken = lay.blob[:12] + bytes(b ^ 0x5A for b in lay.blob[12:40]) + lay.blob[40:]
    lay = I.Layer(broken, lay.diff_id, lay.media_type)  # digest recomputed: the bytes are "right" but corrupt
    p = layout(tmp_path, I.image([lay]))
    check(tmp_path, f"oci:{p}", "layer 0", "gzip")


def test_truncated_tar(tmp_path: Path) -> None:
    raw = I.tar_bytes([I.file("big", b"x" * 100_000), STATUS])
    cut = raw[:50_000]
    lay = I.Layer(cut, I.sha256(cut), "application/vnd.oci.image.layer.v1.tar")
    p = layout(tmp_path, I.image([lay]))
    check(tmp_path, f"oci:{p}", "layer 0", "truncated or corrupt tar")


def test_truncated_gzip(tmp_path: Path) -> None:
    lay = I.layer([I.file("big", bytes(range(256)) * 4000), STATUS])
    cut = lay.blob[: len(lay.blob) // 2]
    p = layout(tmp_path, I.image([I.Layer(cut, lay.diff_id, lay.media_type)]))
    check(tmp_path, f"oci:{p}", "layer 0", "truncated")


def test_digest_mismatch(tmp_path: Path) -> None:
    lay = I.layer([STATUS], "none")
    img = I.image([lay])
    p = layout(tmp_path, img)
    blob = p / "blobs" / "sha256" / lay.digest.split(":", 1)[1]
    # Swap in another valid layer of the same size: only the digest check can notice.
    other = I.layer([I.file("var/lib/dpkg/status", "Package: b\nStatus: install ok installed\nVersion: 1\n\n")], "none")
    assert len(other.blob) == len(lay.blob)
    blob.write_bytes(other.blob)
    check(tmp_path, f"oci:{p}", "digest mismatch", lay.digest)


def test_oversized_manifest(tmp_path: Path) -> None:
    img = I.image([I.layer([STATUS])])
    doc = json.loads(img.manifest)
    doc["annotations"] = {"padding": "x" * (5 * 1024 * 1024)}
    img.manifest = json.dumps(doc).encode()
    p = layout(tmp_path, img)
    check(tmp_path, f"oci:{p}", "manifest", "over the", "limit")


def test_unknown_layer_media_type(tmp_path: Path) -> None:
    lay = I.layer([STATUS])
    lay.media_type = "application/vnd.example.strange+tar"
    p = layout(tmp_path, I.image([lay]))
    check(tmp_path, f"oci:{p}", "unknown media type", "application/vnd.example.strange+tar")


def test_unknown_manifest_media_type(tmp_path: Path) -> None:
    img = I.image([I.layer([STATUS])])
    doc = json.loads(img.manifest)
    doc["mediaType"] = "application/vnd.example.manifest+json"
    img.manifest = json.dumps(doc).encode()
    img.manifest_media_type = doc["mediaType"]
    p = layout(tmp_path, img)
    check(tmp_path, f"oci:{p}", "unknown manifest media type")


def test_not_an_oci_layout(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    check(tmp_path, f"oci:{tmp_path / 'plain'}", "not an OCI image layout")


def test_missing_docker_archive(tmp_path: Path) -> None:
    check(tmp_path, f"docker-archive:{tmp_path / 'nope.tar'}", "is not a file")


def test_docker_archive_that_is_not_a_tar(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar file at all" * 100)
    check(tmp_path, f"docker-archive:{junk}", "not a readable tar archive")


def test_docker_archive_without_manifest(tmp_path: Path) -> None:
    ar = tmp_path / "x.tar"
    ar.write_bytes(I.tar_bytes([I.file("something", "x")]))
    check(tmp_path, f"docker-archive:{ar}", "no file 'manifest.json'")


def test_malformed_reference(tmp_path: Path) -> None:
    check(tmp_path, "Registry.example/UPPER:tag", "malformed repository name")


def test_bad_platform(tmp_path: Path) -> None:
    p = layout(tmp_path, I.image([I.layer([STATUS])]))
    sandbox = tmp_path / "sandbox"
    r = run_cli(["scan", f"oci:{p}", "--platform", "linux"], sandbox)
    assert_one_line_error(r, "--platform", "os/arch")


def test_unreachable_registry(tmp_path: Path) -> None:
    # port 9 (discard) on loopback: nothing listens there on these machines
    check(tmp_path, "127.0.0.1:9/library/app:1", "cannot reach")


def test_index_without_the_platform(tmp_path: Path) -> None:
    a = I.image([I.layer([STATUS])], arch="amd64")
    b = I.image([I.layer([STATUS])], arch="arm64", variant="v8")
    p = layout(tmp_path, I.index([(a, "linux/amd64"), (b, "linux/arm64/v8")]))
    sandbox = tmp_path / "sandbox"
    r = run_cli(["scan", f"oci:{p}", "--platform", "linux/s390x"], sandbox)
    assert_one_line_error(r, f"oci:{p}", "no manifest for platform linux/s390x", "linux/arm64/v8")


def test_a_successful_scan_writes_only_its_report(tmp_path: Path) -> None:
    p = layout(tmp_path, I.image([I.layer([STATUS])]))
    sandbox = tmp_path / "sandbox"
    out = sandbox / "report.json"
    r = run_cli(["scan", f"oci:{p}", "--format", "json", "--output", str(out)], sandbox)
    assert r.code == 0, r.stderr
    assert [w.split("\t", 1)[1] for w in r.writes] == [str(out)]
    assert json.loads(out.read_text())["results"][0]["packages"][0]["name"] == "a"


@pytest.mark.parametrize("compression", ["gzip"])
def test_gzip_bomb_is_capped(tmp_path: Path, compression: str) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        ti = tarfile.TarInfo("zeros")
        ti.size = 64 * 1024 * 1024
        tf.addfile(ti, io.BytesIO(b"\0" * ti.size))
    blob = gzip.compress(raw.getvalue(), compresslevel=9)
    lay = I.Layer(blob, I.sha256(raw.getvalue()), "application/vnd.oci.image.layer.v1.tar+gzip")
    p = layout(tmp_path, I.image([lay]))
    sandbox = tmp_path / "sandbox"
    r = run_cli(["scan", f"oci:{p}", "--max-image-bytes", "16M"], sandbox)
    assert_one_line_error(r, f"oci:{p}", "decompression bomb")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["scan"], "Missing argument 'IMAGE'"),
        (["scan", "oci:x", "--format", "xml"], "'xml' is not one of"),
        (["scan", "oci:x", "--max-image-bytes", "lots"], "is not a size"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_usage_errors_are_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    r = run_cli(args, tmp_path / "sandbox")
    assert r.code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hullwatch: error: ") and needle in lines[0], r.stderr


def test_password_without_username(tmp_path: Path) -> None:
    r = run_cli(["scan", "127.0.0.1:9/app", "--password", "x"], tmp_path / "sandbox")
    assert_one_line_error(r, "127.0.0.1:9/app", "password was given without a username")
