"""Build the quickstart's sample image from real files on this machine.

``python -m tests.support.sample_image OUT`` writes an OCI layout to OUT: two
layers holding this machine's os-release and dpkg status (the first layer an
older state with half the packages, the second the real file), or, on a machine
without dpkg, the Debian sample in tests/data.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tests.support import images as I

DATA = Path(__file__).resolve().parent.parent / "data"


def build(out: Path) -> Path:
    status_path = Path("/var/lib/dpkg/status")
    os_release = Path("/etc/os-release")
    if status_path.is_file() and os_release.is_file():
        status = status_path.read_bytes()
        osr = os_release.read_bytes()
        origin = "this machine's /etc/os-release and /var/lib/dpkg/status"
    else:
        status = (DATA / "debian12-status").read_bytes()
        osr = b'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
        origin = "the Debian 12 sample in tests/data (no dpkg database on this machine)"
    older = "\n\n".join(status.decode("utf-8", "replace").split("\n\n")[::2]).encode()
    img = I.image(
        [
            I.layer(
                [
                    I.file("usr/lib/os-release", osr),
                    I.F("etc/os-release", kind="symlink", link="../usr/lib/os-release"),
                    I.file("var/lib/dpkg/status", older),
                ]
            ),
            I.layer([I.file("var/lib/dpkg/status", status)]),
        ],
        history=["base: os-release and an older package set", "apt-get install: the current package set"],
    )
    if out.exists():
        shutil.rmtree(out)
    I.write_oci_layout(out, img, tag="latest")
    print(f"sample image from {origin}: {out}", file=sys.stderr)
    return out


if __name__ == "__main__":
    build(Path(sys.argv[1] if len(sys.argv) > 1 else ".hullwatch-sample/image"))
