"""The README's first command, end to end on this machine: push -> event -> findings stored -> alert printed.

``python -m tests.support.demo_pipeline WORKDIR`` does what the cloud does on every push:

1. builds a sample image from real files (this machine's os-release and dpkg database, plus a
   real old Python wheel fetched from PyPI, ``urllib3 1.24.1``);
2. starts a local OCI registry (Debian's ``docker-registry``) on loopback and pushes the image;
3. builds the vulnerability database: the PyPA advisory corpus beside the repository when it is
   there (``../shared/corpora/osv-pypa``), otherwise ``hullwatch db update --ecosystem PyPI``;
4. starts ``hullwatch serve``'s app on loopback and delivers the registry's push event to it
   as Event Grid would (an ``ImagePushed`` event);
5. waits for the worker: it pulls the image, stores the findings and prints the alerts;
   the stored findings are then read back from the store and summarised.

Without ``docker-registry`` (or ``pip`` access to PyPI) it says what is missing and stops with exit 2.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.request
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from tests.support import images as I
from tests.support.registries import push, registry_binary, start_registry
from tests.support.sample_image import build as build_sample

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpora" / "osv-pypa" / "vulns"
WHEEL = "urllib3==1.24.1"


def say(text: str) -> None:
    print(f"==> {text}", file=sys.stderr, flush=True)


def wheel_files(work: Path) -> list[I.F]:
    """The old wheel installed into site-packages, as image files (its dist-info is what is inventoried)."""
    dl = work / "wheels"
    dl.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", str(dl), WHEEL],
        capture_output=True,
        text=True,
    )
    if p.returncode != 0:
        raise SystemExit(f"hullwatch demo: error: cannot download {WHEEL} from PyPI: {p.stderr.strip()[-300:]}")
    (whl,) = dl.glob("urllib3-1.24.1-*.whl")
    prefix = "usr/local/lib/python3.11/site-packages/"
    with zipfile.ZipFile(whl) as zf:
        return [I.file(prefix + n, zf.read(n)) for n in zf.namelist() if not n.endswith("/")]


def build_db(db_path: Path) -> None:
    from shared.vulndb.importer import import_paths
    from shared.vulndb.update import update

    if db_path.exists():
        db_path.unlink()
    if CORPUS.is_dir():
        stats = import_paths(db_path, [CORPUS])
        say(f"vulnerability database: {stats.written} PyPA advisories from {CORPUS.parent.name}")
    else:
        res = update(db_path, ["PyPI"])
        say(f"vulnerability database: OSV PyPI export ({res.stats.written if res.stats else 0} advisories)")


def event_for(registry: str, repo: str, tag: str, digest: str) -> bytes:
    now = datetime.now(UTC).isoformat()
    return json.dumps(
        [
            {
                "id": f"demo-{digest[7:19]}",
                "topic": "/subscriptions/demo/resourceGroups/demo/providers/"
                "Microsoft.ContainerRegistry/registries/demo",
                "subject": f"{repo}:{tag}",
                "eventType": "Microsoft.ContainerRegistry.ImagePushed",
                "eventTime": now,
                "dataVersion": "2.0",
                "metadataVersion": "1",
                "data": {
                    "id": "demo",
                    "timestamp": now,
                    "action": "push",
                    "target": {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": digest,
                        "repository": repo,
                        "tag": tag,
                    },
                    "request": {"id": "demo", "host": registry, "method": "PUT"},
                },
            }
        ]
    ).encode()


def main(work: Path) -> int:
    from shared.service.local import LocalConfig, make_app
    from shared.stores.sqlite import SQLiteStore

    if registry_binary() is None:
        print(
            "hullwatch demo: error: docker-registry is not installed (apt-get install docker-registry)", file=sys.stderr
        )
        return 2
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)

    say("building a sample image from this machine's files and a real old wheel (urllib3 1.24.1)")
    base = build_sample(work / "base-layout")
    index = json.loads((base / "index.json").read_text())
    manifest = json.loads((base / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_bytes())
    base_layers = []
    for d in manifest["layers"]:
        blob = (base / "blobs" / "sha256" / d["digest"][7:]).read_bytes()
        base_layers.append(I.Layer(blob, I.sha256(gzip.decompress(blob)), d["mediaType"]))
    img = I.image([*base_layers, I.layer(wheel_files(work))], history=["base", "packages", "pip install urllib3"])

    reg = start_registry(Path(tempfile.mkdtemp(prefix="registry-", dir=work)))
    try:
        registry = reg.host
        digest = push(reg.url, "demo/app", "1.0", img)
        say(f"pushed {registry}/demo/app:1.0 ({digest[:19]}...) to a local registry")
        db_path = work / "vulndb.sqlite"
        build_db(db_path)

        config = LocalConfig(
            data_dir=work / "serve",
            registries=[registry],
            db_path=db_path,
            insecure_registries=[registry],
            port=0,
            stream=sys.stdout,
        )
        server, worker = make_app(config)
        worker.start()
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        port = server.server_address[1]
        say(f"hullwatch serve listening on 127.0.0.1:{port}; delivering the registry's ImagePushed event")
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/eventgrid",
            data=event_for(registry, "demo/app", "1.0", digest),
            headers={"Content-Type": "application/json", "aeg-event-type": "Notification"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:  # loopback only
            resp.read()
        if not worker.wait_idle(timeout=300):
            print("hullwatch demo: error: the worker did not finish within 5 minutes", file=sys.stderr)
            return 1
        server.shutdown()
        worker.stop()
        store = SQLiteStore(work / "serve" / "store.sqlite")
        findings = store.findings_for_image(digest)
        image = store.get_image(digest)
        print()
        counts = dict(image.severity_counts) if image else {}
        print(f"stored: image {digest[:19]}... with {len(findings)} findings {counts}")
        for f in sorted(findings, key=lambda r: (-r.finding.priority, r.vulnerability_id))[:5]:
            print(
                f"  {f.status.value:8} {f.severity:8} {f.vulnerability_id:16} {f.finding.package_name} "
                f"{f.finding.installed_version} -> {', '.join(f.finding.fixed_versions) or 'no fix'}"
            )
        store.close()
        return 0 if findings else 1
    finally:
        reg.stop()


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1] if len(sys.argv) > 1 else ".hullwatch-sample/demo")))
