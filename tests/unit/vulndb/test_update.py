"""``db update`` against a local HTTP server that speaks ETag / If-None-Match like the OSV bucket."""

from __future__ import annotations

import http.server
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.vulndb import db
from shared.vulndb.errors import VulnDBError
from shared.vulndb.update import update


def zip_of(records: list[dict[str, object]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for r in records:
            zf.writestr(f"{r['id']}.json", json.dumps(r))
    return buf.getvalue()


def rec(rid: str, eco: str, name: str) -> dict[str, object]:
    return {
        "id": rid,
        "modified": "2024-05-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": eco, "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "9"}]}],
            }
        ],
    }


class Bucket:
    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.requests: list[tuple[str, str | None]] = []


@pytest.fixture
def bucket() -> Iterator[tuple[Bucket, str]]:
    state = Bucket()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append((self.path, self.headers.get("If-None-Match")))
            entry = state.files.get(self.path)
            if entry is None:
                self.send_response(404)
                self.end_headers()
                return
            body, etag = entry
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_conditional_update(bucket: tuple[Bucket, str], tmp_path: Path) -> None:
    state, url = bucket
    state.files["/PyPI/all.zip"] = (zip_of([rec("PYSEC-1", "PyPI", "a")]), '"v1"')
    state.files["/Debian/all.zip"] = (zip_of([rec("DSA-1", "Debian:12", "b")]), '"d1"')
    path = tmp_path / "v.sqlite"
    first = update(path, ["PyPI", "Debian"], base_url=url)
    assert sorted(first.fetched) == ["Debian", "PyPI"] and first.stats is not None and first.stats.written == 2
    second = update(path, None, base_url=url)  # the ecosystems in use, from the database
    assert sorted(second.unchanged) == ["Debian", "PyPI"] and second.fetched == []
    assert ("/PyPI/all.zip", '"v1"') in state.requests
    state.files["/PyPI/all.zip"] = (zip_of([rec("PYSEC-1", "PyPI", "a"), rec("PYSEC-2", "PyPI", "c")]), '"v2"')
    third = update(path, None, base_url=url)
    assert third.fetched == ["PyPI"] and third.stats is not None and third.stats.written == 1
    info = db.info(path)
    assert info["ecosystems"] == {"Debian:12": 1, "PyPI": 2}


def test_failed_download_leaves_the_database(bucket: tuple[Bucket, str], tmp_path: Path) -> None:
    state, url = bucket
    state.files["/PyPI/all.zip"] = (zip_of([rec("PYSEC-1", "PyPI", "a")]), '"v1"')
    path = tmp_path / "v.sqlite"
    update(path, ["PyPI"], base_url=url)
    before = path.read_bytes()
    state.files["/PyPI/all.zip"] = (b"PK\x03\x04 truncated", '"v2"')
    with pytest.raises(VulnDBError, match="not a valid zip"):
        update(path, ["PyPI"], base_url=url)
    with pytest.raises(VulnDBError, match="HTTP 404"):
        update(path, ["npm"], base_url=url)
    assert path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".osv-")], "downloads are cleaned up"
