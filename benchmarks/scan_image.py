#!/usr/bin/env python3
"""Benchmark: the image scanner against its floor, and its peak memory.

What it does, for each image size asked for (default: 300M and 1G):

1. Builds (once; reused on later runs) a reproducible OCI image layout of that
   many uncompressed bytes of file content, in 6 gzip layers: this machine's
   real ``/var/lib/dpkg/status`` and ``/etc/os-release``, the status file
   rewritten in two later layers (packages added, then a few purged), whiteouts,
   and tens of thousands of ordinary files: small ones (1-64 KiB) and some
   large ones (1-20 MiB), of text-like, binary-like and random content, in
   directories several levels deep. Layers are written as a stream to disk
   (tar -> gzip -> file, hashing both sides on the way), never held in memory.
2. Times, in this one process and interleaved, N times each (medians reported):
     floor - every layer blob: open -> ``streams.decompressed`` (the scanner's
             own decompressor) -> ``tarfile`` ``r|`` -> ``next()`` over every
             member, reading only what tarfile must skip, analysing nothing;
     scan  - ``scan(ScanRequest("oci:LAYOUT"))``, the whole scanner;
     sha256 - sha256 over the compressed blobs alone, for context (the scan
             verifies every blob digest; the floor does not).
3. Runs the full scan in fresh subprocesses and reads their peak RSS
   (their own ``VmHWM``), next to a bare
   ``python -c "import shared.scanning.scanner"`` for context.

Targets: scan/floor <= 1.3x; peak RSS < 150 MB for both sizes.

Usage:
    python benchmarks/scan_image.py                      # 300M and 1G, 5 reps
    python benchmarks/scan_image.py --size 300M --reps 3
    python benchmarks/scan_image.py --write-results      # also update benchmarks/RESULTS.md

Building the images takes a while the first time (about 30 s for 300M and
1-1.5 min for 1G on two idle cores, gzip level 6 running at ~20 MB/s per core;
longer on a busy machine); they are kept under ``benchmarks/.work/``
(git-ignored) and reused. A measuring run then takes about 5-6 minutes.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import itertools
import json
import math
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import tarfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: Bump when the image generator changes, so old images are rebuilt.
GEN_VERSION = 3
DEFAULT_SIZES = ("300M", "1G")
DEFAULT_WORKDIR = REPO / "benchmarks" / ".work"
RESULTS = REPO / "benchmarks" / "RESULTS.md"

from benchmarks._report import code_version, command_line, machine, write_section  # noqa: E402

RATIO_TARGET = 1.3
RSS_TARGET_MB = 150.0

KiB = 1024
MiB = 1024 * 1024
MTIME = 1_700_000_000
HOST_STATUS = Path("/var/lib/dpkg/status")
HOST_OS_RELEASE = Path("/etc/os-release")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


# ---------------------------------------------------------------------------
# sizes and formatting


def parse_size(text: str) -> int:
    """'300M' -> 300 MiB, '1G' -> 1 GiB, plain digits -> bytes."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": KiB, "M": MiB, "G": 1024 * MiB}.get(t[-1:], 1)
    num = t[:-1] if t[-1:] in "KMG" else t
    return int(float(num) * mult)


def mb(kib: int) -> float:
    """ru_maxrss / VmHWM (KiB) in MB (10^6 bytes), the unit of the RSS target."""
    return kib * 1024 / 1e6


def fmt_bytes(n: float) -> str:
    if n >= 1024 * MiB:
        return f"{n / (1024 * MiB):.2f} GiB"
    if n >= MiB:
        return f"{n / MiB:.0f} MiB"
    return f"{n / KiB:.0f} KiB"


# ---------------------------------------------------------------------------
# content pools: semi-compressible data, reproducible from a seed

POOL_BYTES = 24 * MiB  # must exceed the largest file (20 MiB)
_POOLS: dict[str, bytes] = {}


def _text_pool(rng: random.Random, size: int) -> bytes:
    """Source-code / documentation-like text: a Zipf vocabulary, indentation, punctuation."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["".join(rng.choices(letters, k=rng.randint(2, 11))) for _ in range(12000)]
    vocab += ["self", "return", "def", "if", "else", "the", "of", "and", "import", "for", "in", "None"]
    rng.shuffle(vocab)
    cum = list(itertools.accumulate(1.0 / (i + 1) ** 1.05 for i in range(len(vocab))))
    seps = [" ", " ", " ", " ", " ", ", ", ".", "_", "(", ") ", " = ", ": ", "/", "-"]
    out: list[str] = []
    total = 0
    while total < size:
        words = rng.choices(vocab, cum_weights=cum, k=4096)
        pieces = rng.choices(seps, k=4096)
        i = 0
        while i < 4096:
            n = rng.randint(2, 14)
            indent = " " * (4 * rng.randint(0, 4))
            line = indent + "".join(w + s for w, s in zip(words[i : i + n], pieces[i : i + n], strict=True)) + "\n"
            out.append(line)
            total += len(line)
            i += n
    return "".join(out).encode()[:size]


def _binary_pool(rng: random.Random, size: int) -> bytes:
    """Object-file-like bytes: machine-code-ish opcode runs, zero padding, small-integer
    tables, symbol-name strings and some high-entropy stretches (compresses ~2.5x)."""
    parts: list[bytes] = []
    total = 0
    ops = [rng.randbytes(rng.randint(1, 6)) for _ in range(300)]
    ocum = list(itertools.accumulate(1.0 / (i + 1) for i in range(len(ops))))
    # "basic blocks": short instruction sequences that recur, the common ones often
    blocks = [b"".join(rng.choices(ops, cum_weights=ocum, k=rng.randint(3, 12))) for _ in range(4000)]
    bcum = list(itertools.accumulate(1.0 / (i + 1) ** 0.9 for i in range(len(blocks))))
    syms = [("".join(rng.choices("abcdefghijklmnopqrstuvwxyz_", k=rng.randint(4, 24)))).encode() for _ in range(3000)]
    while total < size:
        r = rng.random()
        if r < 0.10:
            b = rng.randbytes(rng.randint(8, 128))
        elif r < 0.22:
            b = b"\0" * rng.randint(4, 128)
        elif r < 0.72:
            b = b"".join(rng.choices(blocks, cum_weights=bcum, k=rng.randint(4, 32)))
        elif r < 0.86:
            b = b"\0".join(rng.choices(syms, k=rng.randint(2, 16))) + b"\0"
        else:
            n = rng.randint(8, 64)
            b = b"".join(rng.randrange(0, 4096).to_bytes(4, "little") for _ in range(n))
        parts.append(b)
        total += len(b)
    return b"".join(parts)[:size]


def make_pools(seed: int) -> None:
    if _POOLS.get("seed") == seed.to_bytes(8, "little"):
        return
    _POOLS["text"] = _text_pool(random.Random(f"text-{seed}"), POOL_BYTES)
    _POOLS["binary"] = _binary_pool(random.Random(f"binary-{seed}"), POOL_BYTES)
    _POOLS["seed"] = seed.to_bytes(8, "little")


ELF_IDENT = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8  # 64-bit little-endian ELF


def content(kind: str, size: int, seed: int, elf: bool = False) -> bytes:
    if elf:  # a shared object or executable: the scanner's executable inventory hashes these whole
        return (ELF_IDENT + content(kind, size, seed))[:size]
    rng = random.Random(seed)
    if size == 0:
        return b""
    if kind == "random":
        return rng.randbytes(size)
    if kind in ("text", "binary"):
        pool = _POOLS[kind]
        off = rng.randrange(0, len(pool) - size + 1)
        return pool[off : off + size]
    # "mixed": a large file made of 64 KiB-1 MiB stretches of each kind (shared objects, archives)
    parts = []
    left = size
    while left:
        n = min(left, rng.randint(64 * KiB, MiB))
        k = rng.choices(("binary", "text", "random"), weights=(5, 4, 1))[0]
        parts.append(content(k, n, rng.getrandbits(63)))
        left -= n
    return b"".join(parts)


# ---------------------------------------------------------------------------
# the image plan: every entry of every layer, decided up front from the seed


@dataclass
class Ent:
    path: str
    kind: str  # file | dir | symlink | host
    size: int = 0
    content_kind: str = ""
    seed: int = 0
    link: str = ""
    mode: int = 0o644
    data: bytes | None = None  # literal content (dpkg status, os-release)
    elf: bool = False


@dataclass
class LayerSpec:
    created_by: str
    share: float  # of the image's ordinary-file bytes
    roots: tuple[str, ...]
    large_share: float = 0.45


LAYERS = (
    LayerSpec(
        "debootstrap: base system",
        0.12,
        ("usr/share/doc", "usr/share/locale", "usr/lib/x86_64-linux-gnu", "usr/bin", "etc"),
    ),
    LayerSpec("language runtime", 0.28, ("usr/local/lib/python3.11", "usr/local/include", "usr/local/bin")),
    LayerSpec(
        "apt-get install build and runtime libraries",
        0.22,
        ("usr/lib/x86_64-linux-gnu", "usr/share/icons", "usr/share/fonts", "usr/include"),
    ),
    LayerSpec("application dependencies", 0.25, ("opt/app/node_modules", "opt/app/vendor")),
    LayerSpec("application", 0.10, ("opt/app/src", "opt/app/static")),
    LayerSpec("apt-get purge and cleanup", 0.03, ("var/cache/debconf", "var/log/apt"), large_share=0.0),
)

EXTS = {
    "text": (".py", ".txt", ".h", ".js", ".json", ".md", ".html", ".css", ".conf", ".rst"),
    "binary": (".so", ".so", ".pyc", ".mo", ".bin", ".o", ".a"),
    "random": (".png", ".gz", ".woff2", ".jpg", ".xz", ".zip"),
    # no .jar, .whl or other names a language analyzer opens: their content is not a real archive
    "mixed": (".so", ".pak", ".dat", ".node", ".pack"),
}


ELF_EXTS = (".so", ".o", ".node")


def _name(rng: random.Random) -> str:
    syll = ("ba", "co", "de", "fi", "gu", "ha", "ji", "ko", "lu", "ma", "ne", "po", "qu", "ri", "sa", "ti", "vo")
    return "".join(rng.choices(syll, k=rng.randint(1, 4))) + rng.choice(("", "", "_x", "-2", "lib", "2"))


def _status_stanzas(raw: bytes) -> list[bytes]:
    return [s for s in raw.strip(b"\n").split(b"\n\n") if s.strip()]


def plan_image(total: int, seed: int, status: bytes, os_release: bytes) -> list[list[Ent]]:
    """Every layer's entries. Reproducible: the same (total, seed, host files) gives the same image."""
    stanzas = _status_stanzas(status)
    prng = random.Random(f"plan-{seed}")
    removed_base = set(prng.sample(range(len(stanzas)), min(30, len(stanzas) // 4)))
    purged = set(prng.sample(range(len(stanzas)), min(5, len(stanzas) // 10)))
    base_status = b"\n\n".join(s for i, s in enumerate(stanzas) if i not in removed_base) + b"\n"
    full_status = b"\n\n".join(stanzas) + b"\n"
    final_status = b"\n\n".join(s for i, s in enumerate(stanzas) if i not in purged) + b"\n"

    layers: list[list[Ent]] = []
    for li, spec in enumerate(LAYERS):
        rng = random.Random(f"layer-{seed}-{li}")
        budget = int(total * spec.share)
        ents: list[Ent] = []
        used: set[str] = set()

        def add(e: Ent, used: set[str] = used, ents: list[Ent] = ents) -> None:
            if e.path in used:
                return
            used.add(e.path)
            ents.append(e)

        # directory tree: random walk from the roots, up to 7 levels below a root
        dirs = list(spec.roots)
        n_dirs = max(8, budget // (180 * KiB))
        while len(dirs) < n_dirs:
            parent = rng.choice(dirs)
            depth = parent.count("/")
            if depth >= 8:
                continue
            d = f"{parent}/{_name(rng)}"
            if d not in dirs:
                dirs.append(d)

        large_budget = int(budget * spec.large_share)
        small_budget = budget - large_budget
        while large_budget >= MiB:
            size = min(large_budget, rng.randint(MiB, 20 * MiB))
            kind = rng.choices(("mixed", "binary", "random", "text"), weights=(5, 3, 1, 1))[0]
            path = f"{rng.choice(dirs)}/{_name(rng)}{rng.choice(EXTS[kind])}"
            add(Ent(path, "file", size, kind, rng.getrandbits(63), elf=path.endswith(ELF_EXTS)))
            large_budget -= size
        small_budget += large_budget
        lo, hi = math.log(KiB), math.log(64 * KiB)
        while small_budget > 0:
            size = min(small_budget, int(math.exp(rng.uniform(lo, hi))))
            kind = rng.choices(("text", "binary", "random"), weights=(5, 4, 1))[0]
            path = f"{rng.choice(dirs)}/{_name(rng)}{rng.choice(EXTS[kind])}"
            in_bin = path.startswith(("usr/bin", "usr/local/bin"))
            elf = (kind == "binary" and in_bin) or path.endswith(ELF_EXTS)
            mode = 0o755 if in_bin else 0o644
            add(Ent(path, "file", size, kind, rng.getrandbits(63), mode=mode, elf=elf))
            small_budget -= size
            if rng.random() < 0.02:  # a versioned-library style symlink beside it
                base = path.rsplit("/", 1)
                add(Ent(f"{base[0]}/{_name(rng)}.link", "symlink", link=base[1]))

        if li == 0:
            add(Ent("usr/lib/os-release", "host", data=os_release))
            add(Ent("etc/os-release", "symlink", link="../usr/lib/os-release"))
            add(Ent("var/lib/dpkg/status", "host", data=base_status))
        elif li == 2:
            add(Ent("var/lib/dpkg/status", "host", data=full_status))
        elif li == len(LAYERS) - 1:
            add(Ent("var/lib/dpkg/status", "host", data=final_status))
            # whiteouts of some base-layer docs, and one opaque directory
            docs = [e.path for e in layers[0] if e.kind == "file" and e.path.startswith("usr/share/doc/")]
            for p in rng.sample(docs, min(25, len(docs))):
                d, b = p.rsplit("/", 1)
                add(Ent(f"{d}/.wh.{b}", "file"))
            locale_dirs = sorted(
                {e.path.rsplit("/", 1)[0] for e in layers[0] if e.path.startswith("usr/share/locale/")}
            )
            if locale_dirs:
                add(Ent(f"{rng.choice(locale_dirs)}/.wh..wh..opq", "file"))

        # parent directories first, then everything in path order (as docker writes layers)
        dir_set: set[str] = set()
        for e in ents:
            parts = e.path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                dir_set.add("/".join(parts[:i]))
        ents.extend(Ent(d, "dir", mode=0o755) for d in dir_set)
        ents.sort(key=lambda e: e.path)
        layers.append(ents)
    return layers


# ---------------------------------------------------------------------------
# writing the layout, streaming


class _HashingWriter:
    def __init__(self, f: io.RawIOBase | io.BufferedIOBase | gzip.GzipFile) -> None:
        self.f = f
        self.h = hashlib.sha256()
        self.n = 0

    def write(self, b: bytes) -> int:
        self.h.update(b)
        self.n += len(b)
        self.f.write(b)
        return len(b)

    def flush(self) -> None:
        pass


@dataclass
class LayerStats:
    index: int
    digest: str
    diff_id: str
    size: int  # compressed
    raw_size: int  # uncompressed tar
    files: int
    entries: int
    created_by: str
    elf_files: int = 0
    elf_bytes: int = 0
    exec_files: int = 0  # execute bit or ELF: what the executable inventory hashes
    exec_bytes: int = 0


def build_layer(index: int, ents: list[Ent], blobs: Path, level: int) -> LayerStats:
    tmp = blobs / f".layer-{index}.part"
    files = elf_files = elf_bytes = exec_files = exec_bytes = 0
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
                elif e.kind == "symlink":
                    ti.type = tarfile.SYMTYPE
                    ti.linkname = e.link
                    ti.mode = 0o777
                    tf.addfile(ti)
                else:
                    data = e.data if e.data is not None else content(e.content_kind, e.size, e.seed, e.elf)
                    ti.size = len(data)
                    tf.addfile(ti, io.BytesIO(data))
                    files += 1
                    if data[:4] == b"\x7fELF":
                        elf_files += 1
                        elf_bytes += len(data)
                    if data[:4] == b"\x7fELF" or e.mode & 0o111:
                        exec_files += 1
                        exec_bytes += len(data)
        gz.close()
    digest = "sha256:" + comp.h.hexdigest()
    tmp.rename(blobs / digest.split(":", 1)[1])
    return LayerStats(
        index,
        digest,
        "sha256:" + raw.h.hexdigest(),
        comp.n,
        raw.n,
        files,
        len(ents),
        LAYERS[index].created_by,
        elf_files,
        elf_bytes,
        exec_files,
        exec_bytes,
    )


def _write_blob(blobs: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (blobs / digest.split(":", 1)[1]).write_bytes(data)
    return digest


@dataclass
class ImageMeta:
    gen_version: int
    target: int
    seed: int
    gzip_level: int
    host_files: str
    layers: list[LayerStats] = field(default_factory=list)

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


def host_files(workdir: Path, refresh: bool) -> tuple[bytes, bytes, str]:
    """This machine's dpkg status and os-release, as first snapshotted into the work directory.

    The snapshot keeps the images (and so the numbers) the same from run to run
    even when packages are installed on the machine in between; ``--refresh-host-files``
    takes a new one (and so rebuilds the images).
    """
    snap = workdir / "host-snapshot"
    if refresh or not (snap / "status").is_file() or not (snap / "os-release").is_file():
        if not HOST_STATUS.is_file() or not HOST_OS_RELEASE.exists():
            sys.exit(f"this benchmark needs a Debian-family host: {HOST_STATUS} and {HOST_OS_RELEASE}")
        snap.mkdir(parents=True, exist_ok=True)
        (snap / "status").write_bytes(HOST_STATUS.read_bytes())
        (snap / "os-release").write_bytes(HOST_OS_RELEASE.read_bytes())
    status = (snap / "status").read_bytes()
    osr = (snap / "os-release").read_bytes()
    return status, osr, hashlib.sha256(status + b"\0" + osr).hexdigest()[:16]


def write_layout(root: Path, blobs: Path, stats: list[LayerStats], tag: str) -> None:
    """config, manifest, index.json and oci-layout around layer blobs already written to ``blobs``."""
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [s.diff_id for s in stats]},
            "history": [{"created_by": s.created_by} for s in stats],
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": _write_blob(blobs, config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": s.digest, "size": s.size} for s in stats],
        },
        indent=2,
    ).encode()
    mdigest = _write_blob(blobs, manifest)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": mdigest,
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (root / "index.json").write_text(json.dumps(index, indent=2))


def ensure_image(
    workdir: Path, size_label: str, seed: int, level: int, jobs: int, rebuild: bool, refresh_host: bool = False
) -> tuple[Path, ImageMeta]:
    total = parse_size(size_label)
    status, osr, host_key = host_files(workdir, refresh_host)
    root = workdir / f"image-{total // MiB}M-seed{seed}-gz{level}-v{GEN_VERSION}"
    meta_path = root / "bench-meta.json"
    if meta_path.is_file() and not rebuild:
        doc = json.loads(meta_path.read_text())
        if doc.get("host_files") == host_key:
            doc["layers"] = [LayerStats(**x) for x in doc["layers"]]
            return root, ImageMeta(**doc)
        print(f"[{size_label}] the host-file snapshot changed; rebuilding", flush=True)
    if root.exists():
        shutil.rmtree(root)
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    t0 = time.perf_counter()
    print(
        f"[{size_label}] building the image in {root.relative_to(REPO) if root.is_relative_to(REPO) else root} "
        f"(once; gzip level {level}, {jobs} process(es))...",
        flush=True,
    )
    make_pools(seed)
    plan = plan_image(total, seed, status, osr)
    ctx = multiprocessing.get_context("fork")  # the workers inherit the content pools
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as ex:
        # biggest layers first, so two workers finish close together
        order = sorted(range(len(plan)), key=lambda i: -LAYERS[i].share)
        futs = {i: ex.submit(build_layer, i, plan[i], blobs, level) for i in order}
        stats = [futs[i].result() for i in range(len(plan))]
    write_layout(root, blobs, stats, tag="bench")
    meta = ImageMeta(GEN_VERSION, total, seed, level, host_key, stats)
    meta_path.write_text(json.dumps(asdict(meta), indent=2))
    print(
        f"[{size_label}] built in {time.perf_counter() - t0:.0f} s: {fmt_bytes(meta.raw_size)} uncompressed, "
        f"{fmt_bytes(meta.size)} compressed, {meta.files} files",
        flush=True,
    )
    return root, meta


# ---------------------------------------------------------------------------
# measurements


def layer_blobs(root: Path, meta: ImageMeta) -> list[Path]:
    return [root / "blobs" / "sha256" / s.digest.split(":", 1)[1] for s in meta.layers]


def floor_pass(blobs: list[Path]) -> int:
    """Decompress and walk every tar member, nothing else: what any scan must at least do."""
    from shared.scanning.streams import decompressed

    members = 0
    for p in blobs:
        with open(p, "rb") as f:
            stream = decompressed(f, "floor", "floor")
            tf = tarfile.open(fileobj=stream, mode="r|")
            while True:
                ti = tf.next()
                if ti is None:
                    break
                tf.members.clear()  # type: ignore[attr-defined]
                members += 1
    return members


def sha_pass(blobs: list[Path]) -> int:
    n = 0
    for p in blobs:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            while chunk := f.read(MiB):
                h.update(chunk)
                n += len(chunk)
    return n


def scan_pass(root: Path) -> tuple[int, str | None, int]:
    """(packages, OS name, executables) of a full scan."""
    from shared.scanning.scanner import ScanRequest, scan

    (res,) = scan(ScanRequest("oci:" + str(root)))
    return len(res.packages), res.os.pretty_name if res.os else None, len(res.executables or ())


def _vmhwm_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def rss_child(layout: str) -> None:
    t0 = time.perf_counter()
    npk, osname, _ = scan_pass(Path(layout))
    print(json.dumps({"vmhwm_kb": _vmhwm_kb(), "packages": npk, "os": osname, "seconds": time.perf_counter() - t0}))


def run_child(argv: list[str]) -> tuple[int, str]:
    """Run a fresh Python process; (exit code, stdout)."""
    r, w = os.pipe()
    pid = os.posix_spawn(
        argv[0], argv, dict(os.environ), file_actions=[(os.POSIX_SPAWN_DUP2, w, 1), (os.POSIX_SPAWN_CLOSE, r)]
    )
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out


# Peak RSS is the child's own VmHWM (read by the child at its end), not the
# parent's ru_maxrss for it: Linux carries the RSS high-water mark of the
# process image a child had *before* exec (here this benchmark process, with
# its content pools) into that child's ru_maxrss, which would report the
# parent's size, not the scanner's. VmHWM belongs to the new image only.


@dataclass
class Result:
    label: str
    meta: ImageMeta
    floor: list[float]
    scan: list[float]
    sha: list[float]
    rss_kb: list[int]
    packages: int
    os: str | None
    executables: int
    members: int
    #: CPU seconds (every thread of this process) of each floor and scan run
    floor_cpu: list[float]
    scan_cpu: list[float]

    @property
    def cpu_ratio(self) -> float:
        """Median scan CPU time over median floor CPU time: the work, whatever runs in parallel."""
        return statistics.median(self.scan_cpu) / statistics.median(self.floor_cpu)

    @property
    def ratio(self) -> float:
        """Median scan time over median floor time."""
        return statistics.median(self.scan) / statistics.median(self.floor)

    @property
    def pair_ratio(self) -> float:
        """Median of each repetition's scan/floor (the two ran back to back): less sensitive
        to load changing on the machine during the run than the ratio of medians."""
        return statistics.median(s / f for s, f in zip(self.scan, self.floor, strict=True))


def measure(label: str, root: Path, meta: ImageMeta, reps: int, rss_runs: int) -> Result:
    blobs = layer_blobs(root, meta)
    sha_pass(blobs)  # warm the page cache: every pass below reads from memory, not disk
    floor_pass(blobs)  # and one untimed run of each, for lazy imports and allocator warm-up
    scan_pass(root)
    floor, scan_t, sha = [], [], []
    floor_cpu, scan_cpu = [], []
    members = 0
    npk, osname, nexec = 0, None, 0
    for i in range(reps):
        # alternate which goes first, so neither always runs on a warmer cache / heap
        order = ("floor", "scan") if i % 2 == 0 else ("scan", "floor")
        for what in order:
            c0 = time.process_time()
            t0 = time.perf_counter()
            if what == "floor":
                members = floor_pass(blobs)
                floor.append(time.perf_counter() - t0)
                floor_cpu.append(time.process_time() - c0)
            else:
                npk, osname, nexec = scan_pass(root)
                scan_t.append(time.perf_counter() - t0)
                scan_cpu.append(time.process_time() - c0)
        t0 = time.perf_counter()
        sha_pass(blobs)
        sha.append(time.perf_counter() - t0)
        print(
            f"[{label}] rep {i + 1}/{reps}: floor {floor[-1]:.2f} s, scan {scan_t[-1]:.2f} s "
            f"(CPU {floor_cpu[-1]:.2f} s / {scan_cpu[-1]:.2f} s), sha256 {sha[-1]:.2f} s",
            flush=True,
        )
    rss = []
    for _ in range(rss_runs):
        code, out = run_child([sys.executable, str(Path(__file__).resolve()), "--rss-child", str(root)])
        if code != 0:
            sys.exit(f"[{label}] the scan subprocess failed (exit {code})")
        doc = json.loads(out)
        rss.append(doc["vmhwm_kb"])
        print(
            f"[{label}] fresh-process scan: peak RSS (VmHWM) {mb(doc['vmhwm_kb']):.0f} MB, {doc['seconds']:.1f} s",
            flush=True,
        )
    return Result(label, meta, floor, scan_t, sha, rss, npk, osname, nexec, members, floor_cpu, scan_cpu)


def baseline_rss_kb() -> int:
    code, out = run_child([sys.executable, "-c", BASELINE])
    if code != 0:
        sys.exit("python -c 'import shared.scanning.scanner' failed")
    return int(out)


#: The bare import, then its own VmHWM (the read adds nothing measurable).
BASELINE = (
    "import shared.scanning.scanner\n"
    "print(next(int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM:')))"
)


# ---------------------------------------------------------------------------
# report


def table(results: list[Result]) -> str:
    head = (
        "| image | uncompressed | compressed (gzip) | layers | files / tar entries "
        "| floor median | scan median | scan / floor (medians) | per-rep ratio median "
        "| CPU time: floor / scan (ratio) | sha256 of blobs median | peak RSS (max of runs) |"
    )
    rows = [head, "|" + "---|" * 12]
    for r in results:
        m = r.meta
        fm, sm, hm = (statistics.median(x) for x in (r.floor, r.scan, r.sha))
        rows.append(
            f"| {r.label} | {fmt_bytes(m.raw_size)} | {fmt_bytes(m.size)} ({m.raw_size / m.size:.2f}x) "
            f"| {len(m.layers)} | {m.files:,} / {m.entries:,} "
            f"| {fm:.2f} s ({m.raw_size / MiB / fm:.0f} MiB/s) | {sm:.2f} s | **{r.ratio:.2f}x** "
            f"| {r.pair_ratio:.2f}x | {statistics.median(r.floor_cpu):.2f} s / {statistics.median(r.scan_cpu):.2f} s "
            f"({r.cpu_ratio:.2f}x) | {hm:.2f} s | **{mb(max(r.rss_kb)):.0f} MB** |"
        )
    return "\n".join(rows)


def reading(results: list[Result], base_kb: int, reps: int) -> str:
    """The numbers in words. Facts only: where the time and memory go is for a profiler to say."""
    parts = []
    worst = max(r.ratio for r in results)
    ratios = ", ".join(f"{r.ratio:.2f}x ({r.label}; per-rep median {r.pair_ratio:.2f}x)" for r in results)
    verdict = "within" if worst <= RATIO_TARGET else "over"
    parts.append(
        f"Scan/floor is {ratios}: {verdict} the {RATIO_TARGET}x target "
        f"(medians of {reps} interleaved runs in one process, page cache warm). The scan reads each layer "
        "blob, verifies its digest and inflates it on a thread of its own, a few megabytes ahead of the tar "
        "walk and the analyzers (reading, hashing and inflating release the GIL), so on this machine's cores it "
        "overlaps work the floor does in line; in CPU time, which counts every thread, the scan costs "
        + ", ".join(f"{r.cpu_ratio:.2f}x the floor ({r.label})" for r in results)
        + "."
    )
    for r in results:
        gap = statistics.median(r.scan) - statistics.median(r.floor)
        sha = statistics.median(r.sha)
        parts.append(
            f"For {r.label} the scan takes {gap:.2f} s more than the floor; verifying the layer digests "
            f"(sha256 over {fmt_bytes(r.meta.size)} of blobs) accounts for {sha:.2f} s of that, the rest is "
            f"work per entry and per file read: the image has {r.meta.exec_files:,} executable or ELF files "
            f"({fmt_bytes(r.meta.exec_bytes)}, {100 * r.meta.exec_bytes / r.meta.raw_size:.0f}% of the bytes) "
            f"that the executable inventory hashes and the binary analyzers read."
        )
    peaks = [mb(max(r.rss_kb)) for r in results]
    rss_ok = all(p < RSS_TARGET_MB for p in peaks)
    parts.append(
        "Peak RSS of a full scan in a fresh process is "
        + ", ".join(f"{p:.0f} MB ({r.label})" for p, r in zip(peaks, results, strict=True))
        + f" against {mb(base_kb):.0f} MB for the bare import: "
        + ("under" if rss_ok else "NOT under")
        + f" the {RSS_TARGET_MB:.0f} MB target"
        + (
            f"; from {results[0].label} to {results[-1].label} it moves by {peaks[-1] - peaks[0]:+.0f} MB for "
            f"{results[-1].meta.raw_size / results[0].meta.raw_size:.1f}x the bytes."
            if len(results) > 1
            else "."
        )
    )
    parts.append(
        "Caveats: the floor uses the scanner's own decompressor (Python zlib), so a faster gzip would lower "
        "both; the largest file in these images is 20 MiB, so memory that scales with the largest file read "
        "whole does not show here; this machine is shared, so single runs vary and the load average above "
        "says how busy it was."
    )
    return " ".join(parts)


def section(results: list[Result], base_kb: int, args: argparse.Namespace) -> tuple[str, str]:
    key = "sizes=" + ",".join(r.label for r in results)
    m0 = results[0].meta
    body = "\n".join(
        [
            f"<!-- scan_image.py {key} -->",
            f"## {', '.join(r.label for r in results)} images",
            "",
            f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- Machine: {machine()}; load average {args.load_before:.1f} before the run, "
            f"{os.getloadavg()[0]:.1f} after",
            f"- Code: {code_version()}",
            f"- Command: `{command_line()}`",
            f"- Images: seed {m0.seed}, gzip level {m0.gzip_level}, generator v{m0.gen_version}; "
            f"{args.reps} interleaved repetitions, medians; peak RSS is the max over {args.rss_runs} "
            f'fresh-process scans; bare `python -c "import shared.scanning.scanner"` peaks at '
            f"{mb(base_kb):.0f} MB.",
            "- Scan result check: "
            + "; ".join(
                f"{r.label}: {r.packages} packages, OS {r.os!r}, {r.executables:,} executables "
                f"({r.meta.exec_files:,} written, some later whited out)"
                for r in results
            ),
            "- Per-repetition seconds (floor / scan): "
            + "; ".join(
                f"{r.label}: " + ", ".join(f"{f:.2f}/{t:.2f}" for f, t in zip(r.floor, r.scan, strict=True))
                for r in results
            ),
            "",
            table(results),
            "",
            reading(results, base_kb, args.reps),
            f"<!-- /scan_image.py {key} -->",
        ]
    )
    return key, body


RESULTS_HEAD = """# Benchmark results

Produced by `benchmarks/scan_image.py` (see `benchmarks/README.md`). Each section
below is written by `--write-results` and replaced by the next run with the same
image sizes. *Floor* is decompress + walk every tar member with the scanner's own
decompressor and nothing else; *scan* is the full `scan(ScanRequest("oci:..."))`.
Targets: scan/floor <= 1.3x, peak RSS < 150 MB at every image size.
"""


def write_results(key: str, body: str) -> None:
    write_section(f"<!-- scan_image.py {key} -->", f"<!-- /scan_image.py {key} -->", body, RESULTS_HEAD)


# ---------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--size", action="append", help="uncompressed content size, e.g. 300M or 1G (repeatable; default: 300M and 1G)"
    )
    ap.add_argument("--reps", type=int, default=5, help="interleaved floor/scan repetitions (default 5)")
    ap.add_argument("--rss-runs", type=int, default=2, help="fresh-process scans for peak RSS (default 2)")
    ap.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="where images are built and kept")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gzip-level", type=int, default=6, help="6, like docker's default (Go's DefaultCompression)")
    ap.add_argument(
        "--jobs",
        type=int,
        default=max(1, min(4, len(os.sched_getaffinity(0)))),
        help="processes used to build an image",
    )
    ap.add_argument("--rebuild", action="store_true", help="rebuild the images even if present")
    ap.add_argument(
        "--refresh-host-files",
        action="store_true",
        help="snapshot this machine's dpkg status and os-release again (rebuilds the images)",
    )
    ap.add_argument("--build-only", action="store_true")
    ap.add_argument("--write-results", action="store_true", help="add/replace this run's section in RESULTS.md")
    ap.add_argument("--rss-child", metavar="LAYOUT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(args.rss_child)
        return

    sizes = args.size or list(DEFAULT_SIZES)
    images = []
    for i, size in enumerate(sizes):
        refresh = args.refresh_host_files and i == 0
        images.append(
            (size, *ensure_image(args.workdir, size, args.seed, args.gzip_level, args.jobs, args.rebuild, refresh))
        )
    if args.build_only:
        return
    args.load_before = os.getloadavg()[0]
    base_kb = baseline_rss_kb()
    results = [measure(label, root, meta, args.reps, args.rss_runs) for label, root, meta in images]
    print()
    print(table(results))
    print()
    print(f'bare `python -c "import shared.scanning.scanner"` peak RSS: {mb(base_kb):.0f} MB')
    worst = max(r.ratio for r in results)
    peak = mb(max(max(r.rss_kb) for r in results))
    print(
        f"ratio: {'PASS' if worst <= RATIO_TARGET else 'FAIL'} (worst {worst:.2f}x, target <= {RATIO_TARGET}x); "
        f"peak RSS: {'PASS' if peak < RSS_TARGET_MB else 'FAIL'} (worst {peak:.0f} MB, target < {RSS_TARGET_MB:.0f} MB)"
    )
    if args.write_results:
        write_results(*section(results, base_kb, args))


if __name__ == "__main__":
    main()
