#!/usr/bin/env python3
"""Benchmark: the scanner on an application image full of language packages.

The image (6 gzip layers, reproducible from a seed) holds what a real
application image of a polyglot team holds:

- an OS base: this machine's ``/etc/os-release`` and ``/var/lib/dpkg/status``
  (the same snapshot ``scan_image.py`` takes), with ``docker-registry`` and
  ``skopeo`` (real Go programs) in ``usr/bin`` when this machine has them;
- 300 Python distributions: ``<name>-<version>.dist-info`` with METADATA (core
  metadata 2.1-2.4), RECORD (real hashes), WHEEL, INSTALLER, top_level.txt and
  licences, their modules and ``__pycache__``, some compiled extensions (ELF),
  console scripts in ``usr/local/bin``, and a few vendored dist-info
  directories deeper inside packages (which are not distributions); 240 in the
  system ``site-packages``, 60 in an application virtualenv in a later layer;
- 50 Java archives: 40 jars (a few shaded, a few with a manifest and no
  pom.properties) and 10 that nest others: wars (``WEB-INF/lib``), ears (``lib/``
  and a nested war) and Spring Boot jars (``BOOT-INF/lib``, stored); all real
  deflated zips with ``META-INF/maven/<g>/<a>/pom.properties``, a MANIFEST.MF
  and class files of realistic sizes;
- a ``node_modules`` of exactly 20,000 files: whole packages of the real one at
  the repository root (``npm ci --ignore-scripts``; esbuild and
  @microsoft/jest-sarif first, up to 5,000 files, snapshotted once into the
  work directory) plus synthesized packages, scoped ones, nested
  ``node_modules``, ``package.json`` files that are not package roots, ``.bin``
  links and npm's hidden lock file;
- 20 Go binaries: the real ones this machine has (docker-registry, skopeo,
  esbuild), some under two paths, and small programs built here with Debian's
  ``go`` against a file-system module proxy (offline), each with its own set of
  module dependencies.

Then, like ``scan_image.py`` (whose helpers it imports), it times in one
process, interleaved, N times (medians): the *floor* (decompress every layer
with the scanner's own decompressor and walk every tar member, nothing else)
against the full ``scan(ScanRequest("oci:LAYOUT"))``, in wall-clock and in
CPU time (the latter is what a busy shared machine changes least); checks the
packages found per ecosystem against what was built; runs the full scan in
fresh processes for peak RSS (and notes on which files the high-water mark
rose); and, to say where the difference to the floor goes, times the scan in
stages (CPU time, medians of ``--breakdown-reps``): the engine walking every
entry without opening files, then with the ELF peek and executable hashing,
then with every analyzer (each call timed).

A default run takes about 3-4 minutes on two idle cores once the image exists
(building it takes 2-3 minutes the first time); on a loaded machine, longer.

Targets: scan/floor <= 1.5x; peak RSS < 200 MB.

Usage:
    python benchmarks/scan_languages.py                  # build once (kept under benchmarks/.work/), 5 reps
    python benchmarks/scan_languages.py --reps 3
    python benchmarks/scan_languages.py --write-results  # also update benchmarks/RESULTS.md
    python benchmarks/scan_languages.py --profile        # also cProfile one full scan
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
import zipfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# The OS-package benchmark's helpers: content pools, the streaming hash writer,
# the host-file snapshot, the floor and sha256 passes, fresh-process RSS, and
# the machine description. Its image planner and layout writer are tied to its
# own layer table, so the (short) layout-writing part is repeated below.
from benchmarks._report import code_version, command_line, machine, write_section  # noqa: E402
from benchmarks.scan_image import (  # noqa: E402  (the repository root must be on sys.path first)
    MTIME,
    KiB,
    LayerStats,
    MiB,
    _HashingWriter,
    _vmhwm_kb,
    baseline_rss_kb,
    content,
    floor_pass,
    fmt_bytes,
    host_files,
    make_pools,
    mb,
    run_child,
    sha_pass,
    write_layout,
)

#: Bump when the generator changes, so old images are rebuilt.
GEN_VERSION = 1
DEFAULT_WORKDIR = REPO / "benchmarks" / ".work"
RESULTS = REPO / "benchmarks" / "RESULTS.md"
RATIO_TARGET = 1.5
RSS_TARGET_MB = 200.0

NPM_FILES = 20_000
PY_DISTS = 300
PY_VENV_DISTS = 60  # of PY_DISTS, in the application's virtualenv (a later layer)
JARS_PLAIN = 40
JARS_NESTING = 10  # wars, ears and Spring Boot jars, each holding other jars
GO_BINARIES = 20

SITE = "usr/local/lib/python3.11/site-packages"
VENV_SITE = "opt/app/.venv/lib/python3.11/site-packages"
NODE_MODULES = "opt/app/node_modules"
REAL_NODE_MODULES = REPO / "node_modules"  # what `npm ci --ignore-scripts` installed at the repository root
#: At most this many files of it go into the image (whole packages, taken once into the work directory).
REAL_NPM_MAX_FILES = 5_000
#: Packages of it always taken when present: esbuild's Linux binary is a real Go program.
REAL_NPM_FIRST = ("esbuild", "@esbuild/linux-x64", "@microsoft/jest-sarif")
ESBUILD_REL = "@esbuild/linux-x64/bin/esbuild"
REAL_GO = {  # Debian's Go programs, where this machine has them
    "docker-registry": Path("/usr/bin/docker-registry"),
    "skopeo": Path("/usr/bin/skopeo"),
}

LAYERS = (
    "debootstrap: base system; apt-get install docker-registry skopeo",
    "pip install -r requirements.txt (system site-packages)",
    "COPY java libraries and web applications",
    "npm ci",
    "COPY --from=build go tools",
    "python -m venv /opt/app/.venv && pip install; COPY application",
)
L_BASE, L_PY, L_JAVA, L_NPM, L_GO, L_APP = range(6)

ELF_IDENT = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8
CLASS_MAGIC = b"\xca\xfe\xba\xbe\x00\x00\x00\x37"  # Java 11 class files
PYC_MAGIC = b"\xa7\x0d\x0d\x0a\x00\x00\x00\x00"  # CPython 3.11


def log_uniform(rng: random.Random, lo: float, hi: float) -> int:
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi))))


# ---------------------------------------------------------------------------
# what an entry's content is: a small picklable recipe, made into bytes by the
# process that writes the layer (so the plan stays small)
#
#   ("data", bytes)                          literal bytes
#   ("pool", kind, size, seed, prefix)       from scan_image's content pools
#   ("copy", path)                           a file of this machine, streamed
#   ("jar", ArchiveSpec)                     a zip built on the spot
#   ("record", [(relpath, recipe), ...])     a dist-info RECORD of those files

Recipe = tuple


@dataclass
class Ent:
    path: str
    kind: str = "file"  # file | dir | symlink
    recipe: Recipe = ("data", b"")
    mode: int = 0o644
    link: str = ""
    eco: str = ""  # which part of the image it belongs to, for the per-part byte counts


def make_bytes(r: Recipe) -> bytes:
    what = r[0]
    if what == "data":
        return r[1]
    if what == "pool":
        _, kind, size, seed, prefix = r
        return (prefix + content(kind, max(0, size - len(prefix)), seed))[:size] if size else b""
    if what == "copy":
        return Path(r[1]).read_bytes()
    if what == "jar":
        return build_archive(r[1])
    if what == "record":
        lines = []
        for rel, sub in r[1]:
            if sub is None:  # RECORD itself
                lines.append(f"{rel},,")
                continue
            data = make_bytes(sub)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            lines.append(f"{rel},sha256={digest},{len(data)}")
        return ("\n".join(lines) + "\n").encode()
    raise ValueError(what)


# ---------------------------------------------------------------------------
# vocabulary

# (word lists as one string each: easier to read and edit than long list literals)
WORDS = (  # noqa: SIM905
    "array async base cache camel case chalk class color config core crypto data date debug deep define dir dom "
    "dot emit emitter env error escape event fast fetch file flat form format fs get glob graph gzip hash "
    "html http inherits ini is json keys kind lazy lint list load lock log lru map match merge mime minimist "
    "mkdirp ms node object once parse path pick pkg plain plugin promise proxy pump query queue read readable "
    "regex request resolve retry safe schema semver set shim signal slash source split stream string strip "
    "style supports sync tar temp text through time tiny to toml trim type types uid unique url utf8 util "
    "uuid validate value walk watch which wrap write ws xml yaml yargs zip zlib agent ansi args assert "
    "buffer bytes char chunk cli code compose concat cookie cors diff encode entities exit expand extend "
    "fill find flags follow fresh func has hoist iconv ignore indent inflight ip isarray jsonfile kleur "
    "levn lodash lower make micro mute nanoid negotiator normalize number on optionator os own pad picomatch "
    "pify prelude punycode qs range raw rc reflect rimraf run scheduler send serve side sort stack statuses "
    "streams sum symbol tap terser thenify tmp toidentifier tslib undici unpipe vary wide word wrappy xtend yn"
).split()

NPM_SCOPES = (  # noqa: SIM905
    "@types @types @types @types @babel @babel @jest @aws-sdk @aws-sdk @smithy @opentelemetry @nestjs "
    "@typescript-eslint @sinclair @grpc @protobufjs @octokit @sentry @emotion @mui @tanstack @vue "
    "@radix-ui @floating-ui @humanwhocodes @nodelib @pkgjs @isaacs @tootallnate @jridgewell @eslint "
    "@azure @google-cloud @sindresorhus @colors @dabh @fastify @hapi @swc"
).split()

NPM_LICENSES = (
    ["MIT"] * 70
    + ["ISC"] * 10
    + ["Apache-2.0"] * 8
    + ["BSD-3-Clause"] * 4
    + ["BSD-2-Clause"] * 2
    + ["(MIT OR Apache-2.0)"] * 2
    + ["0BSD", "BlueOak-1.0.0", "MPL-2.0", "Unlicense"]
)

MIT_TEXT = (
    "MIT License\n\nCopyright (c) {year} {who}\n\n"
    "Permission is hereby granted, free of charge, to any person obtaining a copy\n"
    'of this software and associated documentation files (the "Software"), to deal\n'
    "in the Software without restriction, including without limitation the rights\n"
    "to use, copy, modify, merge, publish, distribute, sublicense, and/or sell\n"
    "copies of the Software, and to permit persons to whom the Software is\n"
    "furnished to do so, subject to the following conditions:\n\n"
    "The above copyright notice and this permission notice shall be included in all\n"
    "copies or substantial portions of the Software.\n\n"
    'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR\n'
    "IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,\n"
    "FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE\n"
    "AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER\n"
    "LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,\n"
    "OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE\n"
    "SOFTWARE.\n"
)

PEOPLE = (  # noqa: SIM905
    "Sindre Sorhus|Jon Schlinkert|Isaac Z. Schlueter|Mathias Bynens|Feross Aboukhadijeh|TJ Holowaychuk|"
    "Douglas Christopher Wilson|Jordan Harband|Kat Marchan|Rich Harris|Evan You|Mark Adler|Ada Lovelace|"
    "Grace Hopper|Jane Doe|Alex Kim|Priya Nair|Chen Wei|Lars Nilsson|Olga Petrova"
).split("|")


def _semver(rng: random.Random) -> str:
    major = rng.choices(range(13), weights=[8, 14, 10, 9, 8, 7, 6, 5, 4, 3, 2, 2, 2])[0]
    v = f"{major}.{rng.randint(0, 30)}.{rng.randint(0, 20)}"
    if rng.random() < 0.03:
        v += rng.choice(("-beta.", "-rc.", "-alpha.")) + str(rng.randint(0, 9))
    return v


def _sentence(rng: random.Random, words: int) -> str:
    s = " ".join(rng.choices(WORDS, k=words))
    return s[:1].upper() + s[1:]


# ---------------------------------------------------------------------------
# node_modules


@dataclass
class NpmPlan:
    ents: list[Ent]
    files: int
    packages: int  # package-root package.json files with a name and version
    real_files: int
    go_paths: list[str]  # real Go binaries inside node_modules (esbuild)


def npm_root_oracle(rel: str) -> bool:
    """Whether ``rel`` (a path ending in /package.json) sits at a package root:
    ``.../node_modules/<name>/package.json`` or ``.../node_modules/@scope/<name>/package.json``.
    Written independently of the analyzer, as the benchmark's own check."""
    parts = rel.split("/")
    if len(parts) >= 3 and parts[-3] == "node_modules" and not parts[-2].startswith("@"):
        return True
    return len(parts) >= 4 and parts[-4] == "node_modules" and parts[-3].startswith("@") and len(parts[-3]) > 1


def _package_units(nm: Path) -> list[str]:
    """Top-level package directories of a node_modules: ``name`` or ``@scope/name``, sorted."""
    units = []
    for d in sorted(nm.iterdir()):
        if d.name.startswith(".") or not d.is_dir() or d.is_symlink():
            continue
        if d.name.startswith("@"):
            units += [f"{d.name}/{x.name}" for x in sorted(d.iterdir()) if x.is_dir() and not x.is_symlink()]
        else:
            units.append(d.name)
    return units


def _count_files(d: Path) -> int:
    return sum(len(files) + sum(1 for x in dirs if (Path(root) / x).is_symlink()) for root, dirs, files in os.walk(d))


def snapshot_node_modules(workdir: Path, refresh: bool) -> Path:
    """Whole packages of the repository's node_modules, copied once into the work directory.

    Like the dpkg status snapshot, this keeps the image (and so the numbers) the
    same from run to run when packages are installed at the repository root in
    between; ``--refresh-host-files`` takes a new one. esbuild (and its Linux
    binary) and @microsoft/jest-sarif come first, then other packages in name
    order while the total stays within REAL_NPM_MAX_FILES; the ``.bin`` links
    into them come along. The rest of the image's node_modules is synthesized.
    """
    snap = workdir / "host-snapshot" / "node_modules"
    stamp = workdir / "host-snapshot" / "node_modules.json"
    if stamp.is_file() and snap.is_dir() and not refresh:
        return snap
    shutil.rmtree(snap, ignore_errors=True)
    snap.mkdir(parents=True)
    chosen: list[str] = []
    total = 0
    if REAL_NODE_MODULES.is_dir():
        units = _package_units(REAL_NODE_MODULES)
        for u in [x for x in REAL_NPM_FIRST if x in units] + [x for x in units if x not in REAL_NPM_FIRST]:
            n = _count_files(REAL_NODE_MODULES / u)
            if total + n > REAL_NPM_MAX_FILES:
                continue
            (snap / u).parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(REAL_NODE_MODULES / u, snap / u, symlinks=True)
            chosen.append(u)
            total += n
        bin_dir = REAL_NODE_MODULES / ".bin"
        if bin_dir.is_dir():
            for link in sorted(bin_dir.iterdir()):
                if not link.is_symlink():
                    continue
                target = os.readlink(link)
                inside = os.path.normpath(os.path.join(".bin", target))
                if any(inside == u or inside.startswith(u + "/") for u in chosen):
                    (snap / ".bin").mkdir(exist_ok=True)
                    os.symlink(target, snap / ".bin" / link.name)
    stamp.write_text(json.dumps({"packages": chosen, "files": total}, indent=2))
    return snap


def real_node_modules(snap: Path) -> list[tuple[str, Path, str]]:
    """(path relative to node_modules, source, kind) of the snapshot of the real node_modules, sorted."""
    out: list[tuple[str, Path, str]] = []
    if not snap.is_dir():
        return out
    for dirpath, dirnames, filenames in os.walk(snap):
        dirnames.sort()
        d = Path(dirpath)
        for name in sorted(dirnames + filenames):
            p = d / name
            rel = str(p.relative_to(snap))
            if p.is_symlink():
                out.append((rel, p, "symlink"))
            elif p.is_file():
                out.append((rel, p, "file"))
    return out


def plan_npm(seed: int, snap: Path) -> NpmPlan:
    rng = random.Random(f"npm-{seed}")
    ents: list[Ent] = []
    packages = 0
    go_paths: list[str] = []
    real = real_node_modules(snap)
    taken: set[str] = set()
    real_files = 0
    lock_entries: dict[str, dict[str, object]] = {}  # for npm's hidden lock file, node_modules/.package-lock.json
    for rel, src, kind in real:
        path = f"{NODE_MODULES}/{rel}"
        top = rel.split("/")[0] if not rel.startswith("@") else "/".join(rel.split("/")[:2])
        taken.add(top)
        if kind == "symlink":
            ents.append(Ent(path, "symlink", link=os.readlink(src), eco="npm"))
            continue
        st = src.stat()
        ents.append(Ent(path, "file", ("copy", str(src)), mode=st.st_mode & 0o777, eco="npm"))
        real_files += 1
        if rel.endswith("/package.json") and npm_root_oracle(f"node_modules/{rel}"):
            doc = json.loads(src.read_bytes())
            if (
                isinstance(doc.get("name"), str)
                and isinstance(doc.get("version"), str)
                and doc["name"]
                and doc["version"]
            ):
                packages += 1
                lock_entries["node_modules/" + rel.removesuffix("/package.json")] = {"version": doc["version"]}
        if rel == ESBUILD_REL:
            go_paths.append(path)

    budget = NPM_FILES - real_files - 1  # one for npm's hidden lock file
    top_level: list[str] = []
    files = 0
    while files < budget:
        left = budget - files
        n = max(3, min(600, round(math.exp(rng.gauss(2.2, 1.0)))))
        if left - n < 3:
            n = left
        # a name: scoped ~15%, nested under another package ~10%
        for _ in range(1000):
            base = "-".join(rng.sample(WORDS, rng.choices((1, 2, 3), weights=(3, 5, 2))[0]))
            name = f"{rng.choice(NPM_SCOPES)}/{base}" if rng.random() < 0.15 else base
            if top_level and rng.random() < 0.10:
                parent = rng.choice(top_level)
                where = f"{parent}/node_modules/{name}"
            else:
                where = name
            if where not in taken:
                break
        else:
            raise RuntimeError("ran out of npm package names")
        taken.add(where)
        if "/node_modules/" not in where:
            top_level.append(where)
        version = _semver(rng)
        pdir = f"{NODE_MODULES}/{where}"
        made, manifest = _npm_package(rng, pdir, name, version, n)
        ents.extend(made)
        files += sum(1 for e in made if e.kind == "file")
        packages += 1
        lock_entries[f"node_modules/{where}"] = {
            "version": version,
            "resolved": f"https://registry.npmjs.org/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz",
            "integrity": "sha512-" + base64.b64encode(rng.randbytes(64)).decode(),
            **({"license": manifest["license"]} if isinstance(manifest.get("license"), str) else {}),
            **({"dependencies": manifest["dependencies"]} if manifest.get("dependencies") else {}),
        }
        if "bin" in manifest:
            bin_name = name.rsplit("/", 1)[-1]
            if f".bin/{bin_name}" not in taken:
                taken.add(f".bin/{bin_name}")
                ents.append(Ent(f"{NODE_MODULES}/.bin/{bin_name}", "symlink", link=f"../{where}/bin/cli.js", eco="npm"))
    lock = {"name": "app", "version": "1.0.0", "lockfileVersion": 3, "requires": True, "packages": lock_entries}
    ents.append(
        Ent(f"{NODE_MODULES}/.package-lock.json", recipe=("data", json.dumps(lock, indent=2).encode()), eco="npm")
    )
    files += 1
    return NpmPlan(ents, real_files + files, packages, real_files, go_paths)


def _npm_package(rng: random.Random, pdir: str, name: str, version: str, n: int) -> tuple[list[Ent], dict]:
    ents: list[Ent] = []
    used: set[str] = set()

    def add(rel: str, recipe: Recipe, mode: int = 0o644) -> bool:
        if rel in used or len(ents) >= n:
            return False
        used.add(rel)
        ents.append(Ent(f"{pdir}/{rel}", recipe=recipe, mode=mode, eco="npm"))
        return True

    types_pkg = name.startswith("@types/")
    lic_pick = rng.random()
    manifest: dict[str, object] = {"name": name, "version": version, "description": _sentence(rng, rng.randint(3, 12))}
    if not types_pkg:
        manifest["main"] = rng.choice(("index.js", "lib/index.js", "dist/index.js", "dist/cjs/index.js"))
    manifest["types"] = "index.d.ts" if types_pkg else rng.choice(("index.d.ts", "dist/index.d.ts", "types/index.d.ts"))
    author = rng.choice(PEOPLE)
    manifest["author"] = author
    manifest["repository"] = {
        "type": "git",
        "url": f"git+https://github.com/{author.split()[0].lower()}/{name.lstrip('@').replace('/', '-')}.git",
    }
    manifest["keywords"] = rng.sample(WORDS, rng.randint(0, 8))
    if lic_pick < 0.02:  # legacy object form
        manifest["license"] = {"type": "MIT", "url": "https://opensource.org/licenses/MIT"}
    elif lic_pick < 0.03:  # legacy array form
        manifest["licenses"] = [{"type": "MIT", "url": "https://opensource.org/licenses/MIT"}]
    elif lic_pick < 0.04:
        pass  # no licence declared
    else:
        manifest["license"] = rng.choice(NPM_LICENSES)
    if rng.random() < 0.7:
        manifest["dependencies"] = {
            (f"{rng.choice(NPM_SCOPES)}/" if rng.random() < 0.1 else "") + rng.choice(WORDS): "^" + _semver(rng)
            for _ in range(rng.randint(1, 12))
        }
    if rng.random() < 0.4:
        manifest["devDependencies"] = {rng.choice(WORDS): "^" + _semver(rng) for _ in range(rng.randint(1, 20))}
    manifest["engines"] = {"node": rng.choice((">=12", ">=14", ">=16", ">=18", "^14.17.0 || ^16.10.0 || >=17.0.0"))}
    manifest["scripts"] = {"test": rng.choice(("tap", "jest", "mocha", "ava", "node test.js")), "build": "tsc -p ."}
    has_bin = not types_pkg and rng.random() < 0.03
    if has_bin:
        manifest["bin"] = {name.rsplit("/", 1)[-1]: "bin/cli.js"}
    manifest["files"] = ["index.js", "lib/", "dist/", "index.d.ts"]
    add("package.json", ("data", (json.dumps(manifest, indent=2) + "\n").encode()))

    if rng.random() < 0.85:
        add(
            rng.choice(("LICENSE", "LICENSE", "license", "LICENSE.md")),
            ("data", MIT_TEXT.format(year=rng.randint(2012, 2024), who=author).encode()),
        )
    if rng.random() < 0.9:
        add(
            rng.choice(("README.md", "README.md", "readme.md")),
            ("pool", "text", log_uniform(rng, 1 * KiB, 20 * KiB), rng.getrandbits(63), b"# " + name.encode() + b"\n\n"),
        )
    if rng.random() < 0.2:
        add(
            "CHANGELOG.md",
            ("pool", "text", log_uniform(rng, 2 * KiB, 30 * KiB), rng.getrandbits(63), b"# Changelog\n\n"),
        )
    if has_bin:
        add(
            "bin/cli.js",
            (
                "pool",
                "text",
                log_uniform(rng, 1 * KiB, 6 * KiB),
                rng.getrandbits(63),
                b"#!/usr/bin/env node\n'use strict';\n",
            ),
            0o755,
        )
    if rng.random() < 0.05:  # an ESM marker: a package.json that is not a package root
        add("dist/esm/package.json", ("data", b'{\n  "type": "module"\n}\n'))
    if rng.random() < 0.01:  # a test fixture with a name and version: not a package either
        fixture = {"name": f"fixture-{rng.choice(WORDS)}", "version": "0.0.1", "private": True}
        add(f"test/fixtures/{rng.choice(WORDS)}/package.json", ("data", json.dumps(fixture).encode()))

    if types_pkg:
        dirs = [""] + [f"{w}/" for w in rng.sample(WORDS, 3)]
    else:
        layout = rng.choice(
            (
                ["", "lib/"],
                ["dist/", "dist/esm/", "dist/cjs/", "dist/types/"],
                ["lib/", "lib/internal/", "lib/utils/"],
                ["", "src/", "build/"],
                ["dist/", "dist/" + rng.choice(WORDS) + "/", "dist/" + rng.choice(WORDS) + "/"],
            )
        )
        dirs = layout
    i = 0
    while len(ents) < n:
        i += 1
        d = rng.choice(dirs)
        stem = "index" if i == 1 else "-".join(rng.sample(WORDS, rng.choice((1, 1, 2))))
        r = rng.random()
        s = rng.getrandbits(63)
        if types_pkg or r < 0.15:
            add(f"{d}{stem}.d.ts", ("pool", "text", log_uniform(rng, 300, 10 * KiB), s, b"export declare "))
        elif r < 0.62:
            add(f"{d}{stem}.js", ("pool", "text", log_uniform(rng, 1 * KiB, 30 * KiB), s, b"'use strict';\n"))
        elif r < 0.77:
            add(
                f"{d}{stem}.js.map",
                ("pool", "text", log_uniform(rng, 2 * KiB, 30 * KiB), s, b'{"version":3,"sources":["'),
            )
        elif r < 0.83:
            add(
                f"{d}{stem}.{rng.choice(('mjs', 'cjs'))}",
                ("pool", "text", log_uniform(rng, 1 * KiB, 20 * KiB), s, b"export "),
            )
        elif r < 0.88:
            add(f"{d}{stem}.ts", ("pool", "text", log_uniform(rng, 1 * KiB, 20 * KiB), s, b"import "))
        elif r < 0.92:
            add(f"{d}{stem}.json", ("pool", "text", log_uniform(rng, 1 * KiB, 8 * KiB), s, b'{"'))
        elif r < 0.96:
            add(f"{d}{stem}.md", ("pool", "text", log_uniform(rng, 1 * KiB, 10 * KiB), s, b"## "))
        else:
            add(
                f"{d}{stem}.{rng.choice(('flow', 'txt', 'css', 'html', 'node.gyp'))}",
                ("pool", "text", log_uniform(rng, 1 * KiB, 12 * KiB), s, b""),
            )
    return ents, manifest


# ---------------------------------------------------------------------------
# Python distributions

PY_CLASSIFIERS = (
    "Development Status :: 5 - Production/Stable",
    "Development Status :: 4 - Beta",
    "Intended Audience :: Developers",
    "Operating System :: OS Independent",
    "Programming Language :: Python :: 3",
    "Programming Language :: Python :: 3 :: Only",
    "Programming Language :: Python :: 3.9",
    "Programming Language :: Python :: 3.10",
    "Programming Language :: Python :: 3.11",
    "Programming Language :: Python :: Implementation :: CPython",
    "Topic :: Software Development :: Libraries :: Python Modules",
    "Topic :: Internet :: WWW/HTTP",
    "Typing :: Typed",
)
WHEEL_GENERATORS = ("bdist_wheel (0.41.2)", "hatchling 1.21.1", "setuptools (69.0.3)", "poetry-core 1.8.1")
PY_LICENSES = (
    ("MIT", "License :: OSI Approved :: MIT License"),
    ("Apache-2.0", "License :: OSI Approved :: Apache Software License"),
    ("BSD-3-Clause", "License :: OSI Approved :: BSD License"),
    ("PSF-2.0", "License :: OSI Approved :: Python Software Foundation License"),
    ("MPL-2.0", "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)"),
    ("LGPL-3.0-or-later", "License :: OSI Approved :: GNU Lesser General Public License v3 or later (LGPLv3+)"),
)


@dataclass
class PyPlan:
    ents_system: list[Ent]
    ents_venv: list[Ent]
    dists: int
    vendored: int  # dist-info directories inside packages: not distributions
    files: int


def _py_name(rng: random.Random) -> str:
    words = rng.sample(WORDS, rng.choices((1, 2, 3), weights=(4, 5, 1))[0])
    style = rng.random()
    if style < 0.05:
        return ".".join(words) if len(words) > 1 else f"zope.{words[0]}"
    if style < 0.15:
        return "_".join(w.capitalize() for w in words)
    if style < 0.25:
        return "py" + "".join(words)
    return "-".join(words)


def _py_version(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.08:
        return f"{rng.randint(2019, 2025)}.{rng.randint(1, 12)}.{rng.randint(1, 30)}"
    v = f"{rng.randint(0, 8)}.{rng.randint(0, 40)}"
    if rng.random() < 0.8:
        v += f".{rng.randint(0, 15)}"
    if r > 0.97:
        v += rng.choice(("rc1", ".post1", "b2", ".dev0"))
    return v


def _metadata(rng: random.Random, name: str, version: str, lic: tuple[str, str]) -> bytes:
    mv = rng.choice(("2.1", "2.1", "2.1", "2.2", "2.3", "2.4"))
    who = rng.choice(PEOPLE)
    lines = [
        f"Metadata-Version: {mv}",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: {_sentence(rng, rng.randint(4, 14))}",
    ]
    if mv == "2.1" or rng.random() < 0.5:
        lines.append(f"Home-page: https://github.com/{who.split()[0].lower()}/{name.lower()}")
    lines += [f"Author: {who}", f"Author-email: {who.split()[0].lower()}@example.org"]
    if mv == "2.4":
        lines.append(f"License-Expression: {lic[0]}")
        lines.append("License-File: LICENSE")
    elif rng.random() < 0.8:
        lines.append(f"License: {lic[0] if rng.random() < 0.7 else lic[1].rsplit(' :: ', 1)[-1]}")
    lines.append(f"Project-URL: Documentation, https://{name.lower()}.readthedocs.io/")
    lines.append(f"Project-URL: Source, https://github.com/{who.split()[0].lower()}/{name.lower()}")
    classifiers = sorted(rng.sample(PY_CLASSIFIERS, rng.randint(3, 9)) + ([lic[1]] if mv != "2.4" else []))
    lines += [f"Classifier: {c}" for c in classifiers]
    lines.append(f"Requires-Python: >={rng.choice(('3.7', '3.8', '3.9'))}")
    for _ in range(rng.randint(0, 6)):
        lines.append(f"Requires-Dist: {'-'.join(rng.sample(WORDS, 2))}>={rng.randint(0, 5)}.{rng.randint(0, 20)}")
    if rng.random() < 0.4:
        extra = rng.choice(("test", "docs", "dev", "speedups"))
        lines.append(f"Provides-Extra: {extra}")
        lines.append(f'Requires-Dist: pytest>=7; extra == "{extra}"')
    if mv != "2.4":
        lines.append("License-File: LICENSE")
    lines.append("Description-Content-Type: text/markdown")
    head = ("\n".join(lines) + "\n\n").encode()
    body = content("text", log_uniform(rng, 500, 20 * KiB), rng.getrandbits(63))
    return head + f"# {name}\n\n".encode() + body + b"\n"


def _dist(
    rng: random.Random, site: str, name: str, version: str, vendored: bool = False
) -> tuple[list[Ent], list[str]]:
    """A wheel installed by pip into ``site``: (entries, console scripts)."""
    mod = name.lower().replace("-", "_").replace(".", "_")
    di = f"{re.sub(r'[-_.]+', '_', name)}-{version}.dist-info"
    files: list[tuple[str, Recipe, int]] = []  # (path relative to site, recipe, mode)
    n_mods = max(1, min(60, int(math.exp(rng.gauss(1.3, 0.9)))))
    sub = [""] + [f"{w}/" for w in rng.sample(WORDS, rng.randint(0, 3))]
    subpackages: set[str] = set()
    stems = ["__init__"] + [f"_{w}" if rng.random() < 0.2 else w for w in rng.sample(WORDS, n_mods)]
    for i, stem in enumerate(stems):
        d = "" if i == 0 else rng.choice(sub)
        size = log_uniform(rng, 1 * KiB, 30 * KiB) if i else log_uniform(rng, 200, 8 * KiB)
        files.append(
            (
                f"{mod}/{d}{stem}.py",
                ("pool", "text", size, rng.getrandbits(63), b'"""' + stem.encode() + b'."""\n'),
                0o644,
            )
        )
        if d and d not in subpackages:
            subpackages.add(d)
            files.append((f"{mod}/{d}__init__.py", ("data", b""), 0o644))
        files.append(
            (
                f"{mod}/{d}__pycache__/{stem}.cpython-311.pyc",
                ("pool", "binary", int(size * rng.uniform(0.5, 0.9)), rng.getrandbits(63), PYC_MAGIC),
                0o644,
            )
        )
    if rng.random() < 0.3:
        files.append((f"{mod}/py.typed", ("data", b""), 0o644))
    if not vendored and rng.random() < 0.08:  # a compiled extension
        files.append(
            (
                f"{mod}/_speedups.cpython-311-x86_64-linux-gnu.so",
                ("pool", "binary", log_uniform(rng, 100 * KiB, 3 * MiB), rng.getrandbits(63), ELF_IDENT),
                0o755,
            )
        )
    lic = rng.choice(PY_LICENSES)
    compiled = any(p.endswith(".so") for p, _, _ in files)
    scripts: list[str] = []
    di_files: list[tuple[str, Recipe]] = [
        (f"{di}/INSTALLER", ("data", b"pip\n")),
        (f"{di}/METADATA", ("data", _metadata(rng, name, version, lic))),
        (
            f"{di}/WHEEL",
            (
                "data",
                (
                    "Wheel-Version: 1.0\n"
                    f"Generator: {rng.choice(WHEEL_GENERATORS)}\n"
                    f"Root-Is-Purelib: {'false' if compiled else 'true'}\n"
                    f"Tag: {'cp311-cp311-manylinux_2_17_x86_64' if compiled else 'py3-none-any'}\n"
                ).encode(),
            ),
        ),
        (f"{di}/top_level.txt", ("data", f"{mod}\n".encode())),
    ]
    if rng.random() < 0.85:
        di_files.append(
            (f"{di}/LICENSE", ("data", MIT_TEXT.format(year=rng.randint(2010, 2024), who=rng.choice(PEOPLE)).encode()))
        )
    if not vendored and rng.random() < 0.15:
        script = name.lower().replace("_", "-").replace(".", "-")
        scripts.append(script)
        di_files.append(
            (f"{di}/entry_points.txt", ("data", f"[console_scripts]\n{script} = {mod}.__main__:main\n".encode()))
        )
    if not vendored and rng.random() < 0.3:
        di_files.append((f"{di}/REQUESTED", ("data", b"")))
    record_rows = [(p, r) for p, r in di_files] + [(p, r) for p, r, _ in files] + [(f"{di}/RECORD", None)]
    if scripts:
        record_rows += [(f"../../../bin/{s}", _console_script(mod, s)) for s in scripts]
    ents = [Ent(f"{site}/{p}", recipe=r, eco="python") for p, r in di_files]
    ents.append(Ent(f"{site}/{di}/RECORD", recipe=("record", sorted(record_rows, key=lambda x: x[0])), eco="python"))
    ents += [Ent(f"{site}/{p}", recipe=r, mode=m, eco="python") for p, r, m in files]
    return ents, scripts


def _console_script(mod: str, script: str) -> Recipe:
    return (
        "data",
        (
            "#!/usr/local/bin/python3.11\n# -*- coding: utf-8 -*-\nimport re\nimport sys\n"
            f"from {mod}.__main__ import main\n"
            "if __name__ == '__main__':\n"
            "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
            "    sys.exit(main())\n"
        ).encode(),
    )


def plan_python(seed: int) -> PyPlan:
    rng = random.Random(f"python-{seed}")
    names: set[str] = set()
    system: list[Ent] = []
    venv: list[Ent] = []
    vendored = 0
    mods: set[str] = set()
    for i in range(PY_DISTS):
        while True:
            name = _py_name(rng)
            mod = name.lower().replace("-", "_").replace(".", "_")
            if name.lower() not in names and mod not in mods:
                break
        names.add(name.lower())
        mods.add(mod)
        in_venv = i >= PY_DISTS - PY_VENV_DISTS
        site = VENV_SITE if in_venv else SITE
        ents, scripts = _dist(rng, site, name, _py_version(rng))
        if i % 100 == 7:  # like pip and setuptools: distributions vendored inside the package
            for _ in range(rng.randint(3, 6)):
                vname = "-".join(rng.sample(WORDS, 2))
                v_ents, _ = _dist(rng, f"{site}/{mod}/_vendor", vname, _py_version(rng), vendored=True)
                ents += v_ents
                vendored += 1
        bindir = "opt/app/.venv/bin" if in_venv else "usr/local/bin"
        for s in scripts:
            ents.append(Ent(f"{bindir}/{s}", recipe=_console_script(mod, s), mode=0o755, eco="python"))
        (venv if in_venv else system).extend(ents)
    files = sum(1 for e in system + venv if e.kind == "file")
    return PyPlan(system, venv, PY_DISTS, vendored, files)


# ---------------------------------------------------------------------------
# Java archives

JAVA_LIBS = (  # noqa: SIM905
    "org.apache.commons:commons-lang3 org.apache.commons:commons-text org.apache.commons:commons-collections4 "
    "commons-io:commons-io commons-codec:commons-codec commons-logging:commons-logging "
    "com.fasterxml.jackson.core:jackson-core com.fasterxml.jackson.core:jackson-databind "
    "com.fasterxml.jackson.core:jackson-annotations com.fasterxml.jackson.datatype:jackson-datatype-jsr310 "
    "org.slf4j:slf4j-api org.slf4j:jul-to-slf4j ch.qos.logback:logback-classic ch.qos.logback:logback-core "
    "org.apache.logging.log4j:log4j-api org.apache.logging.log4j:log4j-core com.google.guava:guava "
    "com.google.guava:failureaccess com.google.code.gson:gson com.google.protobuf:protobuf-java "
    "org.springframework:spring-core org.springframework:spring-beans org.springframework:spring-context "
    "org.springframework:spring-web org.springframework:spring-webmvc org.springframework:spring-jcl "
    "org.springframework.boot:spring-boot org.springframework.boot:spring-boot-autoconfigure "
    "org.yaml:snakeyaml org.apache.tomcat.embed:tomcat-embed-core org.apache.tomcat.embed:tomcat-embed-el "
    "io.netty:netty-buffer io.netty:netty-codec io.netty:netty-common io.netty:netty-handler "
    "io.netty:netty-transport org.apache.httpcomponents:httpclient org.apache.httpcomponents:httpcore "
    "com.squareup.okhttp3:okhttp com.squareup.okio:okio org.jetbrains.kotlin:kotlin-stdlib "
    "org.hibernate.orm:hibernate-core jakarta.persistence:jakarta.persistence-api "
    "jakarta.annotation:jakarta.annotation-api jakarta.servlet:jakarta.servlet-api "
    "javax.inject:javax.inject org.postgresql:postgresql com.zaxxer:HikariCP org.flywaydb:flyway-core "
    "io.micrometer:micrometer-core org.hdrhistogram:HdrHistogram org.latencyutils:LatencyUtils "
    "org.bouncycastle:bcprov-jdk18on org.apache.kafka:kafka-clients org.xerial.snappy:snappy-java "
    "org.lz4:lz4-java com.github.luben:zstd-jni io.projectreactor:reactor-core org.reactivestreams:reactive-streams "
    "org.jboss.logging:jboss-logging net.bytebuddy:byte-buddy org.antlr:antlr4-runtime "
    "org.checkerframework:checker-qual com.google.errorprone:error_prone_annotations org.apache.avro:avro "
    "io.grpc:grpc-api io.grpc:grpc-core com.typesafe:config joda-time:joda-time"
).split()


@dataclass
class ArchiveSpec:
    file_name: str  # as nested or placed, e.g. "jackson-core-2.15.2.jar"
    kind: str  # jar | war | ear | boot
    group: str
    artifact: str
    version: str
    classes: int
    seed: int
    pom: bool = True  # META-INF/maven/<g>/<a>/pom.properties
    shaded: list[tuple[str, str, str]] = field(default_factory=list)  # more pom.properties (shaded dependencies)
    nested: list[ArchiveSpec] = field(default_factory=list)
    stored_nested: bool = False

    def coordinates(self) -> int:
        """Packages the scanner should report for this archive and everything in it."""
        # one for the archive itself (from its pom.properties, or else its manifest), one per shaded pom.properties
        return 1 + len(self.shaded) + sum(n.coordinates() for n in self.nested)


def _java_version(rng: random.Random) -> str:
    v = f"{rng.randint(1, 6)}.{rng.randint(0, 20)}.{rng.randint(0, 15)}"
    return v + rng.choice(("", "", "", "", ".Final", "-jre", ".RELEASE"))


def _lib_spec(rng: random.Random, coords: str, version: str | None = None) -> ArchiveSpec:
    g, a = coords.split(":")
    v = version or _java_version(rng)
    classes = (
        log_uniform(rng, 15, 900) if a not in ("guava", "kotlin-stdlib", "hibernate-core") else rng.randint(1500, 2500)
    )
    return ArchiveSpec(f"{a}-{v}.jar", "jar", g, a, v, classes, rng.getrandbits(63))


@dataclass
class JavaPlan:
    ents: list[Ent]
    top_level: int
    archives: int  # every archive, nested ones included
    coordinates: int


def plan_java(seed: int) -> JavaPlan:
    rng = random.Random(f"java-{seed}")
    versions = {c: _java_version(rng) for c in JAVA_LIBS}  # one version per library, as in one application
    specs: list[tuple[str, ArchiveSpec]] = []
    for i, c in enumerate(rng.sample(JAVA_LIBS, JARS_PLAIN)):
        s = _lib_spec(rng, c, versions[c])
        if i < 3:  # shaded ("uber") jars: their dependencies' pom.properties too
            s.shaded = [
                (*o.split(":"), versions[o]) for o in rng.sample([x for x in JAVA_LIBS if x != c], rng.randint(2, 4))
            ]  # type: ignore[misc]
            s.classes *= 3
        elif i < 6:  # an old jar: a manifest, no pom.properties
            s.pom = False
        specs.append((f"opt/app/lib/{s.file_name}", s))

    def libs(k: int) -> list[ArchiveSpec]:
        return [_lib_spec(rng, c, versions[c]) for c in rng.sample(JAVA_LIBS, k)]

    apps = rng.sample(
        ("shop", "billing", "orders", "catalog", "auth", "reports", "search", "admin", "gateway", "notify"),
        JARS_NESTING,
    )
    for i, app in enumerate(apps):
        v = f"{rng.randint(1, 4)}.{rng.randint(0, 12)}.{rng.randint(0, 9)}"
        if i < 6:
            s = ArchiveSpec(
                f"{app}.war",
                "war",
                f"com.example.{app}",
                app,
                v,
                log_uniform(rng, 40, 400),
                rng.getrandbits(63),
                nested=libs(rng.randint(4, 20)),
            )
            specs.append((f"srv/webapps/{s.file_name}", s))
        elif i < 8:
            war = ArchiveSpec(
                f"{app}-web.war",
                "war",
                f"com.example.{app}",
                f"{app}-web",
                v,
                log_uniform(rng, 40, 300),
                rng.getrandbits(63),
                nested=libs(rng.randint(3, 8)),
            )
            ejb = ArchiveSpec(
                f"{app}-ejb.jar",
                "jar",
                f"com.example.{app}",
                f"{app}-ejb",
                v,
                log_uniform(rng, 30, 200),
                rng.getrandbits(63),
            )
            s = ArchiveSpec(
                f"{app}.ear",
                "ear",
                f"com.example.{app}",
                f"{app}-ear",
                v,
                0,
                rng.getrandbits(63),
                nested=[war, ejb, *libs(rng.randint(3, 8))],
            )
            specs.append((f"srv/apps/{s.file_name}", s))
        else:
            s = ArchiveSpec(
                f"{app}.jar",
                "boot",
                f"com.example.{app}",
                app,
                v,
                log_uniform(rng, 40, 300),
                rng.getrandbits(63),
                nested=libs(rng.randint(10, 25)),
                stored_nested=True,
            )
            specs.append((f"opt/{app}/{s.file_name}", s))

    def count(s: ArchiveSpec) -> int:
        return 1 + sum(count(n) for n in s.nested)

    ents = [Ent(p, recipe=("jar", s), eco="java") for p, s in specs]
    return JavaPlan(ents, len(specs), sum(count(s) for _, s in specs), sum(s.coordinates() for _, s in specs))


def _zinfo(name: str, method: int) -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo(name, date_time=(2024, 1, 2, 3, 4, 6))
    zi.compress_type = method
    zi.create_system = 3
    zi.external_attr = 0o644 << 16
    return zi


def build_archive(s: ArchiveSpec) -> bytes:
    """A real zip: MANIFEST.MF, pom.properties (and pom.xml), classes, resources, nested archives."""
    rng = random.Random(s.seed)
    buf = io.BytesIO()
    d = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(_zinfo("META-INF/", zipfile.ZIP_STORED), b"")
        mf = [
            "Manifest-Version: 1.0",
            "Created-By: Maven JAR Plugin 3.3.0",
            "Build-Jdk-Spec: 17",
            f"Implementation-Title: {s.artifact}",
            f"Implementation-Version: {s.version}",
        ]
        if rng.random() < 0.4:
            mf += [
                f"Bundle-SymbolicName: {s.group}.{s.artifact}",
                f"Bundle-Version: {s.version}",
                "Bundle-ManifestVersion: 2",
            ]
        if s.kind == "boot":
            mf += [
                "Main-Class: org.springframework.boot.loader.JarLauncher",
                f"Start-Class: com.example.{s.artifact}.Application",
                "Spring-Boot-Classes: BOOT-INF/classes/",
                "Spring-Boot-Lib: BOOT-INF/lib/",
            ]
        zf.writestr(_zinfo("META-INF/MANIFEST.MF", d), ("\r\n".join(mf) + "\r\n\r\n").encode())
        poms = ([(s.group, s.artifact, s.version)] if s.pom else []) + list(s.shaded)
        for g, a, v in poms:
            zf.writestr(
                _zinfo(f"META-INF/maven/{g}/{a}/pom.properties", d),
                f"#Created by Apache Maven 3.9.6\nartifactId={a}\ngroupId={g}\nversion={v}\n".encode(),
            )
            pom = (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
                f"  <modelVersion>4.0.0</modelVersion>\n  <groupId>{g}</groupId>\n  <artifactId>{a}</artifactId>\n"
                f"  <version>{v}</version>\n</project>\n"
            ).encode()
            zf.writestr(
                _zinfo(f"META-INF/maven/{g}/{a}/pom.xml", d),
                pom + content("text", rng.randint(500, 6000), rng.getrandbits(63)),
            )
        prefix = {"war": "WEB-INF/classes/", "boot": "BOOT-INF/classes/"}.get(s.kind, "")
        pkg_root = s.group.replace(".", "/") + "/" + s.artifact.replace("-", "").replace(".", "")
        pkgs = [pkg_root] + [f"{pkg_root}/{w}" for w in rng.sample(WORDS, min(12, 1 + s.classes // 40))]
        for _ in range(s.classes):
            name = "".join(w.capitalize() for w in rng.sample(WORDS, rng.randint(1, 3)))
            if rng.random() < 0.25:
                name += "$" + rng.choice(("1", "2", "Builder", "Inner", "Companion"))
            path = f"{prefix}{rng.choice(pkgs)}/{name}.class"
            if path in zf.NameToInfo:
                continue
            zf.writestr(
                _zinfo(path, d), CLASS_MAGIC + content("binary", log_uniform(rng, 400, 16 * KiB), rng.getrandbits(63))
            )
        if s.kind == "war":
            zf.writestr(_zinfo("WEB-INF/web.xml", d), b'<?xml version="1.0"?>\n<web-app version="4.0"/>\n')
            for w in rng.sample(WORDS, rng.randint(3, 12)):
                zf.writestr(
                    _zinfo(f"static/{w}.js", d),
                    content("text", log_uniform(rng, 1 * KiB, 60 * KiB), rng.getrandbits(63)),
                )
        if s.kind == "ear":
            zf.writestr(_zinfo("META-INF/application.xml", d), b'<?xml version="1.0"?>\n<application version="8"/>\n')
        if s.kind in ("jar", "boot") and rng.random() < 0.5:
            zf.writestr(
                _zinfo(f"{prefix}application.properties" if prefix else f"{s.artifact}.properties", d),
                content("text", rng.randint(200, 4000), rng.getrandbits(63)),
            )
        lib_dir = {"war": "WEB-INF/lib/", "boot": "BOOT-INF/lib/", "ear": "lib/"}.get(s.kind, "lib/")
        for n in s.nested:
            data = build_archive(n)
            # an ear holds its modules (the war, the ejb jar) at the top and its libraries in lib/
            module = s.kind == "ear" and (n.kind == "war" or n.artifact.endswith("-ejb"))
            where = n.file_name if module else lib_dir + n.file_name
            zf.writestr(_zinfo(where, zipfile.ZIP_STORED if s.stored_nested else d), data)
    return buf.getvalue()


# ---------------------------------------------------------------------------
# Go binaries

GO_GEN = 1
GO_MODULES = (  # (module path, package name, versions) published in the local module proxy
    ("github.com/acme/retry", "retry", ("v1.2.0", "v1.3.1")),
    ("github.com/acme/logfmt", "logfmt", ("v0.4.0", "v0.5.2")),
    ("github.com/quietorg/envconfig", "envconfig", ("v1.4.0",)),
    ("github.com/quietorg/ratelimit", "ratelimit", ("v0.2.0", "v0.3.0")),
    ("go.example.org/uuid", "uuid", ("v1.6.0",)),
    ("go.example.org/semver", "semver", ("v1.2.1", "v1.3.0")),
    ("gitlab.example.com/infra/metrics", "metrics", ("v0.9.1", "v1.0.0")),
    ("gitlab.example.com/infra/tracing", "tracing", ("v1.11.0",)),
    ("example.com/tools/cli", "cli", ("v1.21.0", "v1.22.0")),
    ("example.com/tools/yamlish", "yamlish", ("v0.0.0-20240102030405-abcdefabcdef", "v0.1.0")),
)


@dataclass
class GoProgram:
    name: str
    deps: list[tuple[str, str]]  # (module, version)
    net: bool


def go_programs(seed: int, n: int) -> list[GoProgram]:
    rng = random.Random(f"go-{seed}")
    out = []
    for i in range(n):
        mods = rng.sample(GO_MODULES, rng.randint(2, 7))
        name = (
            "-".join(
                rng.sample(
                    (
                        "kube",
                        "node",
                        "log",
                        "sync",
                        "edge",
                        "vault",
                        "agent",
                        "proxy",
                        "watch",
                        "ctl",
                        "exporter",
                        "relay",
                    ),
                    2,
                )
            )
            + f"{i}"
        )
        out.append(GoProgram(name, sorted((m, rng.choice(vs)) for m, _, vs in mods), net=i % 3 == 0))
    return out


def _proxy_module(proxy: Path, path: str, pkg: str, version: str) -> None:
    """One module version in a file-system module proxy (the GOPROXY=file:// layout).

    The same layout tests/unit/scanning/test_golang.py builds; copied rather than
    imported, since importing a test module would pull pytest into a benchmark."""
    d = proxy / path / "@v"
    d.mkdir(parents=True, exist_ok=True)
    gomod = f"module {path}\n\ngo 1.19\n"
    (d / f"{version}.info").write_text(json.dumps({"Version": version, "Time": "2024-01-02T03:04:05Z"}))
    (d / f"{version}.mod").write_text(gomod)
    src = f'package {pkg}\n\nimport "strings"\n\nfunc Name() string {{ return strings.ToUpper("{pkg} {version}") }}\n'
    with zipfile.ZipFile(d / f"{version}.zip", "w") as zf:
        zf.writestr(f"{path}@{version}/go.mod", gomod)
        zf.writestr(f"{path}@{version}/{pkg}.go", src)
    listing = d / "list"
    have = listing.read_text().split() if listing.exists() else []
    listing.write_text("\n".join(sorted({*have, version})) + "\n")


def build_go_programs(workdir: Path, programs: list[GoProgram]) -> tuple[list[Path], str]:
    """Build (once) each program with Debian's go, offline; (binaries, go version)."""
    go = shutil.which("go")
    if go is None or not programs:
        return [], ""
    root = workdir / "go"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root / "home"),
        "GOPATH": str(root / "gopath"),
        "GOCACHE": str(root / "cache"),
        "GOPROXY": f"file://{root / 'proxy'}",
        "GOSUMDB": "off",
        "GOFLAGS": "-mod=mod",
        "GOTOOLCHAIN": "local",
        "GO111MODULE": "on",
        "CGO_ENABLED": "0",
    }
    version = subprocess.run(
        [go, "env", "GOVERSION"], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    stamp = root / "built.json"
    want = {"gen": GO_GEN, "go": version, "programs": [asdict(p) for p in programs]}
    want = json.loads(json.dumps(want))  # as it reads back (tuples become lists)
    bins = [root / "bin" / p.name for p in programs]
    if stamp.is_file() and json.loads(stamp.read_text()) == want and all(b.is_file() for b in bins):
        return bins, version
    print(f"building {len(programs)} Go programs with {version} (offline, once)...", flush=True)
    t0 = time.perf_counter()
    shutil.rmtree(root / "proxy", ignore_errors=True)
    for path, pkg, versions in GO_MODULES:
        for v in versions:
            _proxy_module(root / "proxy", path, pkg, v)
    for p, out in zip(programs, bins, strict=True):
        src = root / "src" / p.name
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir(parents=True)
        req = "".join(f"\t{m} {v}\n" for m, v in p.deps)
        (src / "go.mod").write_text(f"module example.com/app/{p.name}\n\ngo 1.19\n\nrequire (\n{req})\n")
        imports = "".join(f'\tm{i} "{m}"\n' for i, (m, _) in enumerate(p.deps))
        calls = ", ".join(f"m{i}.Name()" for i in range(len(p.deps)))
        if p.net:
            body = (
                'import (\n\t"encoding/json"\n\t"fmt"\n\t"net/http"\n\t"os"\n' + imports + ")\n\n"
                "func main() {\n"
                f"\tnames := []string{{{calls}}}\n"
                '\thttp.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {\n'
                "\t\t_ = json.NewEncoder(w).Encode(names)\n\t})\n"
                '\tif err := http.ListenAndServe(os.Getenv("ADDR"), nil); err != nil {\n'
                "\t\tfmt.Fprintln(os.Stderr, err)\n\t\tos.Exit(1)\n\t}\n}\n"
            )
        else:
            body = (
                'import (\n\t"encoding/json"\n\t"fmt"\n\t"os"\n'
                + imports
                + ")\n\n"
                + (
                    "func main() {\n"
                    f"\t_ = json.NewEncoder(os.Stdout).Encode([]string{{{calls}}})\n"
                    "\tfmt.Println(len(os.Args))\n}\n"
                )
            )
        (src / "main.go").write_text("package main\n\n" + body)
        out.parent.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(
            [go, "build", "-trimpath", "-ldflags=-buildid=", "-o", str(out), "."],
            cwd=src,
            env=env,
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            sys.exit(f"go build of {p.name} failed:\n{r.stderr}")
    stamp.write_text(json.dumps(want, indent=2))
    print(f"built the Go programs in {time.perf_counter() - t0:.0f} s", flush=True)
    return bins, version


@dataclass
class GoPlan:
    base_ents: list[Ent]  # in the OS layer (apt-installed)
    ents: list[Ent]
    paths: list[str]  # every Go binary path in the image (node_modules' esbuild included)
    built: dict[str, list[str]]  # path -> expected module names (stdlib + dependencies) of the programs built here
    bytes: int


def plan_go(workdir: Path, seed: int, npm_go_paths: list[str], snap: Path) -> GoPlan:
    real = {k: p for k, p in REAL_GO.items() if p.is_file()}
    if (snap / ESBUILD_REL).is_file():
        real["esbuild"] = snap / ESBUILD_REL
    base_ents, ents, paths = [], [], list(npm_go_paths)
    # apt-installed where Debian puts them, and a second copy each under another path
    for name in ("docker-registry", "skopeo"):
        if name in real:
            base_ents.append(Ent(f"usr/bin/{name}", recipe=("copy", str(real[name])), mode=0o755, eco="go"))
            paths.append(f"usr/bin/{name}")
    copies = {
        "docker-registry": "opt/registry/bin/registry",
        "skopeo": "usr/local/bin/skopeo",
        "esbuild": "usr/local/bin/esbuild",
    }
    for name, where in copies.items():
        if name in real and len(paths) < GO_BINARIES:
            ents.append(Ent(where, recipe=("copy", str(real[name])), mode=0o755, eco="go"))
            paths.append(where)
    programs = go_programs(seed, GO_BINARIES - len(paths))
    bins, _ = build_go_programs(workdir, programs)
    built: dict[str, list[str]] = {}
    for p, b in zip(programs, bins, strict=False):
        where = f"usr/local/bin/{p.name}" if len(built) % 2 == 0 else f"opt/tools/bin/{p.name}"
        ents.append(Ent(where, recipe=("copy", str(b)), mode=0o755, eco="go"))
        paths.append(where)
        built[where] = sorted(["stdlib", *(m for m, _ in p.deps)])
    # no Go toolchain here: more copies of the real binaries under other paths, to make up the number
    pool = sorted(real.items())
    i = 0
    while len(paths) < GO_BINARIES and pool:
        name, src = pool[i % len(pool)]
        where = f"opt/tools/copy{i}/{name}"
        ents.append(Ent(where, recipe=("copy", str(src)), mode=0o755, eco="go"))
        paths.append(where)
        i += 1
    sizes = [Path(e.recipe[1]).stat().st_size for e in base_ents + ents]
    esb = snap / ESBUILD_REL
    return GoPlan(base_ents, ents, paths, built, sum(sizes) + (esb.stat().st_size if npm_go_paths else 0))


# ---------------------------------------------------------------------------
# the image


@dataclass
class Expected:
    python: int
    python_vendored: int
    npm: int
    npm_files: int
    maven: int
    java_archives: int
    java_top_level: int
    go_paths: list[str]
    go_built: dict[str, list[str]]
    go_bytes: int
    dpkg_stanzas: int
    real_npm_files: int


def _with_dirs(ents: list[Ent]) -> list[Ent]:
    """Parent directories first, then everything in path order (as docker writes layers)."""
    have = {e.path for e in ents}
    dirs: set[str] = set()
    for e in ents:
        parts = e.path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    out = ents + [Ent(d, "dir", mode=0o755) for d in dirs if d not in have]
    out.sort(key=lambda e: e.path)
    return out


def plan_image(
    workdir: Path, seed: int, status: bytes, os_release: bytes, snap: Path
) -> tuple[list[list[Ent]], Expected]:
    npm = plan_npm(seed, snap)
    py = plan_python(seed)
    java = plan_java(seed)
    go = plan_go(workdir, seed, npm.go_paths, snap)
    rng = random.Random(f"app-{seed}")
    base = [
        Ent("usr/lib/os-release", recipe=("data", os_release), eco="os"),
        Ent("etc/os-release", "symlink", link="../usr/lib/os-release"),
        Ent("var/lib/dpkg/status", recipe=("data", status), eco="os"),
        *go.base_ents,
    ]
    app = [
        Ent(
            "opt/app/package.json",
            recipe=("data", json.dumps({"name": "app", "version": "1.0.0", "private": True}, indent=2).encode()),
            eco="app",
        ),
        Ent(
            "opt/app/requirements.txt",
            recipe=("data", b"".join(f"{w}==1.{i}.0\n".encode() for i, w in enumerate(rng.sample(WORDS, 30)))),
            eco="app",
        ),
    ]
    for d in ("opt/app/src", "opt/app/src/api", "opt/app/src/jobs", "opt/app/web"):
        for w in rng.sample(WORDS, 15):
            ext = ".js" if d.endswith("web") else ".py"
            app.append(
                Ent(
                    f"{d}/{w}{ext}",
                    recipe=("pool", "text", log_uniform(rng, 1 * KiB, 20 * KiB), rng.getrandbits(63), b""),
                    eco="app",
                )
            )
    layers = [base, py.ents_system, java.ents, npm.ents, go.ents, py.ents_venv + app]
    stanzas = [s for s in status.strip(b"\n").split(b"\n\n") if s.strip()]
    exp = Expected(
        python=py.dists,
        python_vendored=py.vendored,
        npm=npm.packages,
        npm_files=npm.files,
        maven=java.coordinates,
        java_archives=java.archives,
        java_top_level=java.top_level,
        go_paths=sorted(go.paths),
        go_built=go.built,
        go_bytes=go.bytes,
        real_npm_files=npm.real_files,
        dpkg_stanzas=len(stanzas),
    )
    return [_with_dirs(x) for x in layers], exp


@dataclass
class LayerOut:
    stats: LayerStats
    eco_files: dict[str, int]
    eco_bytes: dict[str, int]


def build_layer(index: int, ents: list[Ent], blobs: Path, level: int) -> LayerOut:
    """Write one layer blob, streaming: tar -> gzip -> file, hashing both sides."""
    tmp = blobs / f".layer-{index}.part"
    files = elf_files = elf_bytes = exec_files = exec_bytes = 0
    eco_files: Counter[str] = Counter()
    eco_bytes: Counter[str] = Counter()
    with open(tmp, "wb") as out:
        comp = _HashingWriter(out)
        gz = gzip.GzipFile(filename="", mode="wb", compresslevel=level, fileobj=comp, mtime=0)
        raw = _HashingWriter(gz)
        with tarfile.open(fileobj=raw, mode="w|", format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
            for e in ents:
                ti = tarfile.TarInfo(e.path)
                ti.mtime = MTIME
                ti.mode = e.mode
                ti.uid = ti.gid = 0
                ti.uname = ti.gname = "root"
                if e.kind == "dir":
                    ti.type = tarfile.DIRTYPE
                    tf.addfile(ti)
                    continue
                if e.kind == "symlink":
                    ti.type = tarfile.SYMTYPE
                    ti.linkname = e.link
                    ti.mode = 0o777
                    tf.addfile(ti)
                    continue
                if e.recipe[0] == "copy":  # a file of this machine: streamed, not held
                    src = Path(e.recipe[1])
                    ti.size = src.stat().st_size
                    with open(src, "rb") as f:
                        head = f.read(4)
                        f.seek(0)
                        tf.addfile(ti, f)
                    size = ti.size
                else:
                    data = make_bytes(e.recipe)
                    ti.size = size = len(data)
                    head = data[:4]
                    tf.addfile(ti, io.BytesIO(data))
                files += 1
                eco_files[e.eco] += 1
                eco_bytes[e.eco] += size
                if head == b"\x7fELF":
                    elf_files += 1
                    elf_bytes += size
                if head == b"\x7fELF" or e.mode & 0o111:
                    exec_files += 1
                    exec_bytes += size
        gz.close()
    digest = "sha256:" + comp.h.hexdigest()
    tmp.rename(blobs / digest.split(":", 1)[1])
    stats = LayerStats(
        index,
        digest,
        "sha256:" + raw.h.hexdigest(),
        comp.n,
        raw.n,
        files,
        len(ents),
        LAYERS[index],
        elf_files,
        elf_bytes,
        exec_files,
        exec_bytes,
    )
    return LayerOut(stats, dict(eco_files), dict(eco_bytes))


@dataclass
class ImageMeta:
    gen_version: int
    seed: int
    gzip_level: int
    inputs: str  # fingerprint of this machine's files the image is built from
    layers: list[LayerStats]
    expected: Expected
    eco_files: dict[str, int]
    eco_bytes: dict[str, int]
    build_seconds: float

    @property
    def raw_size(self) -> int:
        return sum(x.raw_size for x in self.layers)

    @property
    def size(self) -> int:
        return sum(x.size for x in self.layers)

    @property
    def files(self) -> int:
        return sum(x.files for x in self.layers)

    @property
    def entries(self) -> int:
        return sum(x.entries for x in self.layers)

    @property
    def exec_files(self) -> int:
        return sum(x.exec_files for x in self.layers)

    @property
    def exec_bytes(self) -> int:
        return sum(x.exec_bytes for x in self.layers)

    @property
    def elf_files(self) -> int:
        return sum(x.elf_files for x in self.layers)

    @property
    def elf_bytes(self) -> int:
        return sum(x.elf_bytes for x in self.layers)


def input_fingerprint(host_key: str, snap: Path) -> str:
    """The machine's files the image copies: the host snapshots (dpkg, node_modules), the real Go binaries."""
    h = hashlib.sha256(host_key.encode())
    for rel, src, kind in real_node_modules(snap):
        h.update(f"{rel}\0{kind}\0".encode())
        h.update(os.readlink(src).encode() if kind == "symlink" else hashlib.sha256(src.read_bytes()).digest())
    for name, p in sorted(REAL_GO.items()):
        h.update(name.encode() + (hashlib.sha256(p.read_bytes()).digest() if p.is_file() else b"-"))
    h.update(shutil.which("go").encode() if shutil.which("go") else b"no go")
    return h.hexdigest()[:16]


def _expected_from(doc: dict) -> Expected:
    return Expected(**doc)


def ensure_image(
    workdir: Path, seed: int, level: int, jobs: int, rebuild: bool, refresh_host: bool
) -> tuple[Path, ImageMeta]:
    status, osr, host_key = host_files(workdir, refresh_host)
    snap = snapshot_node_modules(workdir, refresh_host)
    fp = input_fingerprint(host_key, snap)
    root = workdir / f"languages-seed{seed}-gz{level}-v{GEN_VERSION}"
    meta_path = root / "bench-meta.json"
    if meta_path.is_file() and not rebuild:
        doc = json.loads(meta_path.read_text())
        if doc.get("inputs") == fp:
            doc["layers"] = [LayerStats(**x) for x in doc["layers"]]
            doc["expected"] = _expected_from(doc["expected"])
            return root, ImageMeta(**doc)
        print("this machine's input files changed (host snapshots or Go binaries); rebuilding", flush=True)
    if root.exists():
        shutil.rmtree(root)
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    t0 = time.perf_counter()
    shown = root.relative_to(REPO) if root.is_relative_to(REPO) else root
    print(f"building the image in {shown} (once; gzip level {level}, {jobs} process(es))...", flush=True)
    make_pools(seed)
    plan, expected = plan_image(workdir, seed, status, osr, snap)
    ctx = multiprocessing.get_context("fork")  # the workers inherit the content pools
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as ex:
        weight = [sum(1 for _ in x) for x in plan]
        order = sorted(range(len(plan)), key=lambda i: -weight[i])
        futs = {i: ex.submit(build_layer, i, plan[i], blobs, level) for i in order}
        outs = [futs[i].result() for i in range(len(plan))]
    stats = [o.stats for o in outs]
    eco_files: Counter[str] = Counter()
    eco_bytes: Counter[str] = Counter()
    for o in outs:
        eco_files.update(o.eco_files)
        eco_bytes.update(o.eco_bytes)
    write_layout(root, blobs, stats, tag="languages")
    meta = ImageMeta(
        GEN_VERSION, seed, level, fp, stats, expected, dict(eco_files), dict(eco_bytes), time.perf_counter() - t0
    )
    meta_path.write_text(json.dumps(asdict(meta), indent=2))
    print(
        f"built in {meta.build_seconds:.0f} s: {fmt_bytes(meta.raw_size)} uncompressed, "
        f"{fmt_bytes(meta.size)} compressed, {meta.files:,} files",
        flush=True,
    )
    return root, meta


# ---------------------------------------------------------------------------
# measurements


def layer_blobs(root: Path, meta: ImageMeta) -> list[Path]:
    return [root / "blobs" / "sha256" / s.digest.split(":", 1)[1] for s in meta.layers]


@dataclass
class Found:
    by_type: dict[str, int]
    go_paths: list[str]
    go_modules: dict[str, list[str]]  # path -> module names
    executables: int
    warnings: list[str]
    os: str | None


def summarize(res: object) -> Found:
    by_type: Counter[str] = Counter()
    go: dict[str, list[str]] = {}
    for p in res.packages:  # type: ignore[attr-defined]
        by_type[p.type] += 1
        if p.type == "golang":
            go.setdefault(p.found_in, []).append(p.name)
    return Found(
        dict(by_type),
        sorted(go),
        {k: sorted(v) for k, v in go.items()},
        len(res.executables or ()),  # type: ignore[attr-defined]
        [f"{w.code}: {w.message}" for w in res.warnings],  # type: ignore[attr-defined]
        res.os.pretty_name if res.os else None,  # type: ignore[attr-defined]
    )


class Clock:
    """Wall and CPU time (this process) of a block."""

    def __enter__(self) -> Clock:
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.w0
        self.cpu = time.process_time() - self.c0


def run_scan(root: Path, analyzers: list | None = None) -> object:
    from shared.scanning.scanner import ScanRequest, scan

    (res,) = scan(ScanRequest("oci:" + str(root)), analyzers=analyzers)
    return res


def engine_pass(root: Path, analyzers: list, executables: bool) -> None:
    """The scanner's own source and layer engine, as ``scan_handle`` drives them, minus the result assembly:
    lets the breakdown switch the executable inventory off, which ``scan()`` does not offer."""
    from shared.scanning.layers import LayerEngine
    from shared.scanning.scanner import ScanRequest, open_source
    from shared.scanning.streams import ByteBudget

    req = ScanRequest("oci:" + str(root))
    handles = open_source(req).resolve(req.options)
    try:
        for h in handles:
            engine = LayerEngine(analyzers, lambda w: None, executables=executables)
            budget = ByteBudget(req.options.max_image_bytes, h.info.reference)
            for lay in h.layers:
                engine.add_layer(lay.index, lay.diff_id, h.layer_entries(lay, budget), lay.label)
            engine.finish()
    finally:
        for h in handles:
            h.close()


def check(found: Found, exp: Expected) -> list[str]:
    """Mismatches between what the scan found and what was built (empty: all good)."""
    bad = []
    want = {"python": exp.python, "npm": exp.npm, "maven": exp.maven}
    for t, n in want.items():
        if found.by_type.get(t, 0) != n:
            bad.append(f"{t}: found {found.by_type.get(t, 0)}, built {n}")
    if found.go_paths != exp.go_paths:
        missing = sorted(set(exp.go_paths) - set(found.go_paths))
        extra = sorted(set(found.go_paths) - set(exp.go_paths))
        bad.append(f"golang: binaries without modules {missing}, unexpected {extra}")
    for path, mods in exp.go_built.items():
        if found.go_modules.get(path) != mods:
            bad.append(f"golang: {path}: found {found.go_modules.get(path)}, built {mods}")
    if found.by_type.get("golang", 0) < len(exp.go_paths):
        bad.append(f"golang: {found.by_type.get('golang', 0)} modules for {len(exp.go_paths)} binaries")
    if not 0 < found.by_type.get("dpkg", 0) <= exp.dpkg_stanzas:
        bad.append(f"dpkg: found {found.by_type.get('dpkg', 0)} of {exp.dpkg_stanzas} stanzas")
    others = set(found.by_type) - {"python", "npm", "maven", "golang", "dpkg"}
    if others:
        bad.append(f"unexpected package types {sorted(others)}")
    if found.os is None:
        bad.append("no OS identified")
    return bad


@dataclass
class Breakdown:
    """CPU seconds (medians over ``reps`` runs) of the scan in stages, each stage adding one kind of work."""

    reps: int
    walk: float  # source + engine over every entry, no file opened (no analyzers, no executable inventory)
    peek: float  # + the 4-byte ELF peek of every regular file and sha256 of executables (no analyzers)
    engine: float  # + every analyzer: wanted files read into memory and parsed (no result assembly)
    per_analyzer: dict[str, tuple[int, int, float, int, str]]  # name -> (files, bytes, cpu s, largest, its path)


def _timed_analyzers() -> tuple[list, dict[str, list]]:
    from shared.scanning.analyzers.all import enabled_analyzers

    analyzers = enabled_analyzers("image")
    stats: dict[str, list] = {}
    for a in analyzers:
        orig = a.analyze
        slot = stats.setdefault(a.name, [0, 0, 0.0, 0, ""])

        def analyze(fi, _orig=orig, _slot=slot):  # type: ignore[no-untyped-def]
            c = time.process_time()
            try:
                return _orig(fi)
            finally:
                _slot[2] += time.process_time() - c
                _slot[0] += 1
                _slot[1] += len(fi.content)
                if len(fi.content) > _slot[3]:
                    _slot[3], _slot[4] = len(fi.content), fi.path

        a.analyze = analyze  # type: ignore[method-assign]
    return analyzers, stats


def breakdown(root: Path, reps: int) -> Breakdown:
    walk, peek, eng = [], [], []
    per: dict[str, list] = {}
    for _ in range(reps):
        with Clock() as c:
            engine_pass(root, [], executables=False)
        walk.append(c.cpu)
        with Clock() as c:
            engine_pass(root, [], executables=True)
        peek.append(c.cpu)
        analyzers, stats = _timed_analyzers()
        with Clock() as c:
            engine_pass(root, analyzers, executables=True)
        eng.append(c.cpu)
        for k, v in stats.items():
            if v[0]:
                per.setdefault(k, []).append(v)
    med = statistics.median
    per_analyzer = {
        k: (int(v[0][0]), int(v[0][1]), med(x[2] for x in v), int(v[0][3]), str(v[0][4])) for k, v in per.items()
    }
    return Breakdown(reps, med(walk), med(peek), med(eng), per_analyzer)


def rss_child(layout: str) -> None:
    """One full scan in this fresh process; its peak RSS, and on which files the peak rose.

    The analyzers are the default ones, each wrapped so that the process's
    high-water mark is read (a few microseconds from /proc) before and after
    every call. A file is handed to its analyzers right after the engine has
    read it into memory, so a rise seen before a call happened while that file
    was read (or at least since the previous call), and a rise seen during a
    call is the analyzer's own. Only the rises are kept, so the measurement is
    not disturbed.
    """
    from shared.scanning.analyzers.all import enabled_analyzers

    analyzers = enabled_analyzers("image")
    last = [_vmhwm_kb()]
    start = last[0]
    rises: list[tuple[int, str, str, int, str]] = []  # (KiB, "reading" or "analyzer", path, size, analyzer)

    def note(what: str, fi: object, name: str) -> None:
        hwm = _vmhwm_kb()
        if hwm > last[0]:
            rises.append((hwm - last[0], what, fi.path, len(fi.content), name))  # type: ignore[attr-defined]
            last[0] = hwm

    for a in analyzers:
        orig = a.analyze

        def analyze(fi, _orig=orig, _name=a.name):  # type: ignore[no-untyped-def]
            note("reading", fi, _name)
            try:
                return _orig(fi)
            finally:
                note("analyzer", fi, _name)

        a.analyze = analyze  # type: ignore[method-assign]
    with Clock() as c:
        res = run_scan(Path(layout), analyzers)
    f = summarize(res)
    del res
    final = _vmhwm_kb()
    rises.sort(reverse=True)
    print(
        json.dumps(
            {
                "vmhwm_kb": final,
                "start_kb": start,
                "by_type": f.by_type,
                "seconds": c.wall,
                "rises": rises[:3],
                "rises_total_kb": sum(r[0] for r in rises),
            }
        )
    )


@dataclass
class Result:
    meta: ImageMeta
    floor: list[float]
    scan: list[float]
    floor_cpu: list[float]
    scan_cpu: list[float]
    sha: list[float]
    sha_cpu: list[float]
    rss_kb: list[int]
    found: Found
    members: int
    bd: Breakdown | None = None
    rss_doc: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """Median scan time over median floor time (wall clock)."""
        return statistics.median(self.scan) / statistics.median(self.floor)

    @property
    def pair_ratio(self) -> float:
        """Median of each repetition's scan/floor (run back to back)."""
        return statistics.median(s / f for s, f in zip(self.scan, self.floor, strict=True))

    @property
    def cpu_ratio(self) -> float:
        """The same with this process's CPU time: what the load of other processes does not change."""
        return statistics.median(self.scan_cpu) / statistics.median(self.floor_cpu)


def measure(root: Path, meta: ImageMeta, reps: int, rss_runs: int, bd_reps: int) -> Result:
    blobs = layer_blobs(root, meta)
    sha_pass(blobs)  # warm the page cache
    floor_pass(blobs)  # and one untimed run of each, for lazy imports and allocator warm-up
    res = run_scan(root)
    found = summarize(res)
    del res
    bad = check(found, meta.expected)
    if bad:
        sys.exit("the scan did not find what was built:\n  " + "\n  ".join(bad))
    print(f"scan result check: OK ({', '.join(f'{k} {v:,}' for k, v in sorted(found.by_type.items()))})", flush=True)
    floor, scan_t, floor_cpu, scan_cpu, sha, sha_cpu = [], [], [], [], [], []
    members = 0
    for i in range(reps):
        # alternate which goes first, so neither always runs on a warmer cache / heap
        order = ("floor", "scan") if i % 2 == 0 else ("scan", "floor")
        for what in order:
            with Clock() as c:
                if what == "floor":
                    members = floor_pass(blobs)
                else:
                    run_scan(root)  # the result is dropped at once
            if what == "floor":
                floor.append(c.wall)
                floor_cpu.append(c.cpu)
            else:
                scan_t.append(c.wall)
                scan_cpu.append(c.cpu)
        with Clock() as c:
            sha_pass(blobs)
        sha.append(c.wall)
        sha_cpu.append(c.cpu)
        print(
            f"rep {i + 1}/{reps}: floor {floor[-1]:.2f} s (cpu {floor_cpu[-1]:.2f}), "
            f"scan {scan_t[-1]:.2f} s (cpu {scan_cpu[-1]:.2f}), sha256 {sha[-1]:.2f} s",
            flush=True,
        )
    bd = None
    if bd_reps:
        bd = breakdown(root, bd_reps)
        print(
            f"breakdown (cpu medians of {bd_reps}): walk {bd.walk:.2f} s, + peek/executables {bd.peek:.2f} s, "
            f"+ analyzers {bd.engine:.2f} s",
            flush=True,
        )
    rss: list[int] = []
    rss_doc: dict = {}
    for _ in range(rss_runs):
        code, out = run_child([sys.executable, str(Path(__file__).resolve()), "--rss-child", str(root)])
        if code != 0:
            sys.exit(f"the scan subprocess failed (exit {code})")
        doc = json.loads(out)
        if doc["by_type"] != found.by_type:
            sys.exit(f"the fresh-process scan found {doc['by_type']}, not {found.by_type}")
        rss.append(doc["vmhwm_kb"])
        if doc["vmhwm_kb"] >= max(rss):
            rss_doc = doc
        print(f"fresh-process scan: peak RSS (VmHWM) {mb(doc['vmhwm_kb']):.0f} MB, {doc['seconds']:.1f} s", flush=True)
    return Result(meta, floor, scan_t, floor_cpu, scan_cpu, sha, sha_cpu, rss, found, members, bd, rss_doc)


def profile(root: Path, top: int = 30) -> None:
    import cProfile
    import pstats

    pr = cProfile.Profile()
    pr.enable()
    run_scan(root)
    pr.disable()
    st = pstats.Stats(pr)
    st.sort_stats("tottime").print_stats(top)
    st.sort_stats("cumulative").print_stats(top)


# ---------------------------------------------------------------------------
# report

ECO_ORDER = ("dpkg", "python", "npm", "maven", "golang")


def table(r: Result) -> str:
    m = r.meta
    fm, sm, hm = (statistics.median(x) for x in (r.floor, r.scan, r.sha))
    fc, sc = statistics.median(r.floor_cpu), statistics.median(r.scan_cpu)
    pk = " / ".join(f"{r.found.by_type.get(t, 0):,}" for t in ECO_ORDER)
    head = (
        "| image | uncompressed | compressed (gzip) | layers | files / tar entries | floor median | scan median "
        "| scan / floor (medians) | per-rep ratio median | CPU time: floor / scan (ratio) | sha256 of blobs median "
        "| peak RSS (max of runs) | packages: dpkg / python / npm / maven / golang |"
    )
    row = (
        f"| languages | {fmt_bytes(m.raw_size)} | {fmt_bytes(m.size)} ({m.raw_size / m.size:.2f}x) | {len(m.layers)} "
        f"| {m.files:,} / {m.entries:,} | {fm:.2f} s ({m.raw_size / MiB / fm:.0f} MiB/s) | {sm:.2f} s "
        f"| **{r.ratio:.2f}x** | {r.pair_ratio:.2f}x | {fc:.2f} s / {sc:.2f} s ({r.cpu_ratio:.2f}x) | {hm:.2f} s "
        f"| **{mb(max(r.rss_kb)):.0f} MB** | {pk} |"
    )
    return "\n".join([head, "|" + "---|" * 13, row])


def check_table(r: Result) -> str:
    e, m, f = r.meta.expected, r.meta, r.found
    go_built_mods = sum(len(v) for v in e.go_built.values())
    rows = [
        "| ecosystem | what the image holds | files / bytes | built | found |",
        "|---|---|---|---|---|",
        f"| dpkg | this machine's status file and os-release | {m.eco_files.get('os', 0)} / "
        f"{fmt_bytes(m.eco_bytes.get('os', 0))} | {e.dpkg_stanzas} stanzas "
        f"| {f.by_type.get('dpkg', 0):,} (OS {f.os!r}) |",
        f"| python | {e.python} dist-info distributions in 2 site-packages, {e.python_vendored} vendored dist-info "
        f"directories inside packages (not distributions) "
        f"| {m.eco_files.get('python', 0):,} / {fmt_bytes(m.eco_bytes.get('python', 0))} "
        f"| {e.python} | {f.by_type.get('python', 0):,} |",
        f"| npm | one node_modules ({e.real_npm_files:,} files of real packages, the rest synthesized) "
        f"| {m.eco_files.get('npm', 0):,} / {fmt_bytes(m.eco_bytes.get('npm', 0))} "
        f"| {e.npm:,} package roots | {f.by_type.get('npm', 0):,} |",
        f"| maven | {e.java_top_level} archives ({JARS_NESTING} of them wars, ears and Spring Boot jars), "
        f"{e.java_archives} with the nested ones "
        f"| {m.eco_files.get('java', 0)} / {fmt_bytes(m.eco_bytes.get('java', 0))} "
        f"| {e.maven} coordinates | {f.by_type.get('maven', 0):,} |",
        f"| golang | {len(e.go_paths)} Go binaries ({len(e.go_paths) - len(e.go_built)} paths of real programs, "
        f"{len(e.go_built)} programs built here) | {len(e.go_paths)} / {fmt_bytes(e.go_bytes)} "
        f"| {len(e.go_paths)} binaries; {go_built_mods} modules in those built here "
        f"| {f.by_type.get('golang', 0):,} modules in {len(f.go_paths)} binaries |",
    ]
    return "\n".join(rows)


def reading(r: Result, base_kb: int, reps: int) -> str:
    m = r.meta
    fm, sm = statistics.median(r.floor), statistics.median(r.scan)
    fc, sc = statistics.median(r.floor_cpu), statistics.median(r.scan_cpu)
    hc = statistics.median(r.sha_cpu)
    parts = []
    verdict = "within" if r.ratio <= RATIO_TARGET else "over"
    parts.append(
        f"Scan/floor is {r.ratio:.2f}x (per-repetition median {r.pair_ratio:.2f}x; {r.cpu_ratio:.2f}x in CPU time): "
        f"{verdict} the {RATIO_TARGET}x target (medians of {reps} interleaved runs in one process, page cache "
        f"warm). The scan takes {sm - fm:.2f} s more than the floor's {fm:.2f} s."
    )
    if fm > 1.3 * fc:
        parts.append(
            f"The machine was busy with other work during the run (the floor took {fm:.2f} s of wall time for "
            f"{fc:.2f} s of CPU), so the CPU-time figures are the steadier ones."
        )
    if r.bd is not None:
        bd = r.bd
        an = sorted(bd.per_analyzer.items(), key=lambda kv: -kv[1][2])
        an_total = sum(v[2] for _, v in an)
        detail = ", ".join(f"{k} {v[2]:.2f} s ({v[0]:,} files, {fmt_bytes(v[1])})" for k, v in an if v[2] >= 0.005)
        parts.append(
            f"Where the {sc - fc:.2f} s of CPU between floor and scan go (medians of {bd.reps} runs per stage, "
            f"CPU time): the source and layer engine walking every entry without opening any file take "
            f"{bd.walk:.2f} s ({bd.walk - fc:+.2f} s against the floor; this includes verifying the layer digests, "
            f"{hc:.2f} s of CPU for sha256 of the blobs on their own); the 4-byte ELF peek of each of the "
            f"{m.files:,} regular files through a tar member reader, with sha256 of the {m.exec_files:,} executable "
            f"or ELF files ({fmt_bytes(m.exec_bytes)}), adds {bd.peek - bd.walk:.2f} s; reading the files the "
            f"analyzers want into memory and analysing them adds {bd.engine - bd.peek:.2f} s, of which the "
            f"analyzers' own calls are {an_total:.2f} s ({detail}); building the result (purls, ecosystems, "
            f"sorting) adds {sc - bd.engine:.2f} s."
        )
    peak = mb(max(r.rss_kb))
    rss_text = (
        f"Peak RSS of a full scan in a fresh process is {peak:.0f} MB against {mb(base_kb):.0f} MB for the bare "
        f"import: {'under' if peak < RSS_TARGET_MB else 'NOT under'} the {RSS_TARGET_MB:.0f} MB target."
    )
    doc = r.rss_doc
    if doc.get("rises"):
        big = "; ".join(
            f"+{mb(d):.0f} MB while {'reading' if what == 'reading' else 'analysing'} {path} ({fmt_bytes(size)}, "
            f"for {an})"
            for d, what, path, size, an in doc["rises"]
        )
        rss_text += (
            f" From {mb(doc['start_kb']):.0f} MB at the start of the scan the high-water mark rises in steps, the "
            f"largest on single big files: {big}."
        )
    parts.append(rss_text)
    parts.append(
        f"Package counts match what was built: exactly {m.expected.python} Python distributions (the "
        f"{m.expected.python_vendored} vendored dist-info directories are not counted), {m.expected.npm:,} npm "
        f"package roots (ESM-marker and test-fixture package.json files are not), {m.expected.maven} Maven "
        f"coordinates from {m.expected.java_archives} archives (nested ones included), and Go modules in every one "
        f"of the {len(m.expected.go_paths)} binaries, with exactly the dependency set of each program built here."
    )
    if r.found.warnings:
        codes = Counter(w.split(":", 1)[0] for w in r.found.warnings)
        parts.append(f"The scan reported {len(r.found.warnings)} warnings ({dict(codes)}).")
    else:
        parts.append("The scan reported no warnings.")
    parts.append(
        "Caveats: the floor uses the scanner's own decompressor (Python zlib), so a faster gzip would lower both; "
        "single runs on this shared machine vary, so the medians, the per-repetition ratio and the CPU-time ratio "
        "are the numbers to read; the stage breakdown runs the engine without the result assembly, so its stages "
        "add up to the scan only approximately."
    )
    return " ".join(parts)


MARK_BEGIN = "<!-- scan_languages.py -->"
MARK_END = "<!-- /scan_languages.py -->"


def section(r: Result, base_kb: int, args: argparse.Namespace) -> str:
    m = r.meta
    return "\n".join(
        [
            MARK_BEGIN,
            "## Language packages image (`scan_languages.py`)",
            "",
            f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- Machine: {machine()}; load average {args.load_before:.1f} before the run, "
            f"{os.getloadavg()[0]:.1f} after",
            f"- Code: {code_version()}",
            f"- Command: `{command_line()}`",
            f"- Image: seed {m.seed}, gzip level {m.gzip_level}, generator v{m.gen_version}; {args.reps} interleaved "
            f"repetitions, medians; peak RSS is the max over {args.rss_runs} fresh-process scans; bare "
            f'`python -c "import shared.scanning.scanner"` peaks at {mb(base_kb):.0f} MB. Targets: scan/floor '
            f"<= {RATIO_TARGET}x, peak RSS < {RSS_TARGET_MB:.0f} MB.",
            "- Layers: "
            + "; ".join(f"{s.index}: {s.created_by} ({fmt_bytes(s.raw_size)}, {s.files:,} files)" for s in m.layers),
            "",
            table(r),
            "",
            check_table(r),
            "",
            reading(r, base_kb, args.reps),
            MARK_END,
        ]
    )


def write_results(body: str) -> None:
    write_section(MARK_BEGIN, MARK_END, body)


# ---------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5, help="interleaved floor/scan repetitions (default 5)")
    ap.add_argument("--rss-runs", type=int, default=2, help="fresh-process scans for peak RSS (default 2)")
    ap.add_argument(
        "--breakdown-reps",
        type=int,
        default=3,
        help="runs of each stage of the CPU-time breakdown (default 3; 0: skip)",
    )
    ap.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="where the image is built and kept")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gzip-level", type=int, default=6, help="6, like docker's default (Go's DefaultCompression)")
    ap.add_argument(
        "--jobs",
        type=int,
        default=max(1, min(4, len(os.sched_getaffinity(0)))),
        help="processes used to build the image",
    )
    ap.add_argument("--rebuild", action="store_true", help="rebuild the image even if present")
    ap.add_argument(
        "--refresh-host-files",
        action="store_true",
        help="snapshot this machine's dpkg status, os-release and node_modules again",
    )
    ap.add_argument("--build-only", action="store_true")
    ap.add_argument("--profile", action="store_true", help="also print a cProfile of one full scan")
    ap.add_argument("--write-results", action="store_true", help="add/replace this benchmark's section in RESULTS.md")
    ap.add_argument("--rss-child", metavar="LAYOUT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(args.rss_child)
        return

    root, meta = ensure_image(
        args.workdir, args.seed, args.gzip_level, args.jobs, args.rebuild, args.refresh_host_files
    )
    if args.build_only:
        return
    args.load_before = os.getloadavg()[0]
    base_kb = baseline_rss_kb()
    r = measure(root, meta, args.reps, args.rss_runs, args.breakdown_reps)
    print()
    print(table(r))
    print()
    print(check_table(r))
    print()
    print(reading(r, base_kb, args.reps))
    peak = mb(max(r.rss_kb))
    print(
        f"\nratio: {'PASS' if r.ratio <= RATIO_TARGET else 'FAIL'} ({r.ratio:.2f}x, target <= {RATIO_TARGET}x; "
        f"CPU time {r.cpu_ratio:.2f}x); "
        f"peak RSS: {'PASS' if peak < RSS_TARGET_MB else 'FAIL'} ({peak:.0f} MB, target < {RSS_TARGET_MB:.0f} MB)"
    )
    if args.profile:
        profile(root)
    if args.write_results:
        write_results(section(r, base_kb, args))


if __name__ == "__main__":
    main()
