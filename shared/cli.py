"""``hullwatch``: the local front door.

Exit codes: 0 success; 2 bad input or usage (one line on stderr naming the
image and what is wrong); 1 an internal error (one line; ``--debug`` shows the
traceback). No other output ever reaches stderr as a traceback.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console

from shared import __version__
from shared.domain.models import ScanResult
from shared.errors import HullwatchError, InputError, UsageError
from shared.scanning.manifest import Platform
from shared.scanning.scanner import ScanRequest
from shared.scanning.sources.base import ImageHandle, LayerRef
from shared.vulndb.service import MatchOptions

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_INPUT = 2

FORMATS = ("table", "json", "cyclonedx", "sarif")


def _fail(message: str, code: int) -> None:
    one_line = " ".join(message.split())  # an error is always exactly one line
    click.echo(f"hullwatch: error: {one_line}", err=True)
    sys.exit(code)


@contextmanager
def _errors(debug: bool) -> Iterator[None]:
    try:
        yield
    except InputError as exc:
        if debug:
            traceback.print_exc()
        _fail(str(exc), EXIT_INPUT)
    except HullwatchError as exc:
        if debug:
            traceback.print_exc()
        _fail(str(exc), EXIT_INPUT)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except (click.exceptions.Exit, click.ClickException, SystemExit):
        raise
    except Exception as exc:
        if debug:
            traceback.print_exc()
        _fail(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)", EXIT_INTERNAL)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hullwatch")
def cli() -> None:
    """hullwatch: container image scanning, posture and runtime detection."""


def _parse_size(text: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    mult = 1
    if t and t[-1] in units:
        mult, t = units[t[-1]], t[:-1]
    try:
        value = int(float(t) * mult)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a size (e.g. 8G, 500M)") from None
    if value <= 0:
        raise click.BadParameter("must be positive")
    return value


@cli.command()
@click.argument("image")
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write the report to a file.")
@click.option("--platform", help="os/arch[/variant] to pick from a multi-platform index (default linux/amd64).")
@click.option("--all-platforms", is_flag=True, help="Scan every platform of a multi-platform index.")
@click.option(
    "--username", envvar="HULLWATCH_REGISTRY_USERNAME", help="Registry user (or HULLWATCH_REGISTRY_USERNAME)."
)
@click.option(
    "--password",
    envvar="HULLWATCH_REGISTRY_PASSWORD",
    help="Registry password or token (or HULLWATCH_REGISTRY_PASSWORD).",
)
@click.option("--password-stdin", is_flag=True, help="Read the registry password from standard input.")
@click.option("--insecure-registry", is_flag=True, help="Allow plain HTTP to a localhost-style registry.")
@click.option("--docker-config", type=click.Path(dir_okay=False), help="A docker config.json to read credentials from.")
@click.option(
    "--max-image-bytes",
    default="8G",
    show_default=True,
    help="Cap on decompressed bytes per image (decompression bombs).",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="HULLWATCH_DB",
    help="Vulnerability database (default: the user's cache directory; HULLWATCH_DB).",
)
@click.option("--no-vulns", is_flag=True, help="Inventory only: do not match vulnerabilities.")
@click.option("--ignore-unfixed", is_flag=True, help="Hide vulnerabilities that have no fix yet.")
@click.option("--include-dev", is_flag=True, help="Also match development-only dependencies.")
@click.option("--severity", "severities", help="Show only these severities, e.g. HIGH,CRITICAL.")
@click.option("--policy", type=click.Path(dir_okay=False, path_type=Path), help="Exemptions policy (YAML).")
@click.option(
    "--vex",
    "vex_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="OpenVEX document(s); not_affected and fixed statements suppress.",
)
@click.option(
    "--exit-code",
    type=int,
    default=0,
    show_default=True,
    help="Exit with this code when a shown, unsuppressed vulnerability reaches --fail-on.",
)
@click.option(
    "--fail-on",
    type=click.Choice(["LOW", "MEDIUM", "HIGH", "CRITICAL"], case_sensitive=False),
    help="Severity that trips --exit-code (default: any).",
)
@click.option(
    "--executables",
    "list_executables",
    is_flag=True,
    help="Include the executable-file inventory (path, size, mode, sha256) in JSON output.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
def scan(
    image: str,
    fmt: str,
    output: Path | None,
    platform: str | None,
    all_platforms: bool,
    username: str | None,
    password: str | None,
    password_stdin: bool,
    insecure_registry: bool,
    docker_config: str | None,
    max_image_bytes: str,
    db_path: Path | None,
    no_vulns: bool,
    ignore_unfixed: bool,
    include_dev: bool,
    severities: str | None,
    policy: Path | None,
    vex_files: tuple[Path, ...],
    exit_code: int,
    fail_on: str | None,
    list_executables: bool,
    debug: bool,
) -> None:
    """Inventory the packages of IMAGE.

    IMAGE is REGISTRY/REPO[:TAG|@DIGEST], oci:PATH[:TAG], docker-archive:FILE or dir:PATH.
    """
    from shared.scanning.scanner import RegistryCredentials
    from shared.scanning.scanner import scan as run_scan
    from shared.scanning.sources.base import ScanOptions

    with _errors(debug):
        plat = Platform.parse(platform) if platform else None
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        if password and not username:
            raise InputError(image, "a registry password was given without a username")
        req = ScanRequest(
            image=image,
            options=ScanOptions(
                platform=plat, all_platforms=all_platforms, max_image_bytes=_parse_size(max_image_bytes)
            ),
            credentials=RegistryCredentials(username=username, password=password),
            insecure_registry=insecure_registry,
            docker_config=docker_config,
        )
        match = _match_options(db_path, no_vulns, ignore_unfixed, include_dev, severities, policy, vex_files, image)
        err = Console(stderr=True)
        if err.is_terminal and not os.environ.get("CI"):
            results = _scan_with_progress(req, err)
        else:
            results = run_scan(req)
        if match is not None:
            from shared.vulndb.service import assess

            path, options = match
            results = assess(results, path, options)
        elif not no_vulns:
            click.echo(
                "hullwatch: note: no vulnerability database yet (hullwatch db update, or hullwatch db import); "
                "showing the inventory only",
                err=True,
            )
        _emit(results, fmt, output, list_executables)
        if exit_code and match is not None:
            from shared.vulndb.service import gate

            if gate(results, fail_on.upper() if fail_on else None):
                sys.exit(exit_code)


def _match_options(
    db_path: Path | None,
    no_vulns: bool,
    ignore_unfixed: bool,
    include_dev: bool,
    severities: str | None,
    policy: Path | None,
    vex_files: tuple[Path, ...],
    image: str,
) -> tuple[Path, MatchOptions] | None:
    """Where the database is and how to match, or None to skip matching."""
    from shared.findings.exemptions import load_policy, load_vex
    from shared.vulndb import db
    from shared.vulndb.service import MatchOptions

    if no_vulns:
        return None
    path = db_path or db.default_path()
    if not path.exists():
        if db_path is not None:
            raise InputError(
                str(path), "no vulnerability database here: run 'hullwatch db import' or 'hullwatch db update'"
            )
        return None
    sev = None
    if severities:
        names = {s.strip().upper() for s in severities.split(",") if s.strip()}
        bad = names - {"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"}
        if bad:
            raise UsageError("--severity", f"unknown severities {sorted(bad)} (UNKNOWN, LOW, MEDIUM, HIGH, CRITICAL)")
        sev = frozenset(names)
    exemptions = load_policy(policy) if policy else []
    vex = [st for f in vex_files for st in load_vex(f)]
    return path, MatchOptions(
        ignore_unfixed=ignore_unfixed, include_dev=include_dev, severities=sev, exemptions=exemptions, vex=vex
    )


def _scan_with_progress(req: ScanRequest, console: Console) -> list[ScanResult]:
    """Scan with a progress bar on stderr (only called when stderr is a terminal)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn

    from shared.scanning.scanner import scan as run_scan

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[int, TaskID] = {}

        def resolved(handles: list[ImageHandle]) -> None:
            for h in handles:
                total = sum(lay.size or 0 for lay in h.layers) or None
                tasks[id(h)] = bar.add_task(f"reading {h.info.platform or h.info.reference}", total=total)

        def step(handle: ImageHandle, layer: LayerRef) -> None:
            bar.advance(tasks[id(handle)], layer.size or 0)

        return run_scan(req, progress=step, on_resolved=resolved)


def _emit(results: list[ScanResult], fmt: str, output: Path | None, list_executables: bool) -> None:
    if fmt == "json":
        from shared.report.jsonout import render

        text = render(results, executables=list_executables)
    elif fmt == "cyclonedx":
        from shared.report.cyclonedx import render as render_cdx

        text = render_cdx(results)
    elif fmt == "sarif":
        from shared.report.sarif import render as render_sarif

        text = render_sarif(results)
    else:
        from shared.report.table import print_tables

        if output is None:
            print_tables(results, Console())
            return
        with output.open("w") as fh:
            print_tables(results, Console(file=fh, width=200))
        return
    if output is None:
        sys.stdout.write(text)
    else:
        try:
            output.write_text(text)
        except OSError as exc:
            raise InputError(str(output), f"cannot write the report: {exc.strerror}") from None


@cli.group()
def db() -> None:
    """The local vulnerability database (OSV, CISA KEV, EPSS)."""


_DB_OPTION = click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="HULLWATCH_DB",
    help="Database file (default: the user's cache directory; HULLWATCH_DB).",
)


@db.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_DB_OPTION
@click.option("--debug", is_flag=True)
def db_import(paths: tuple[Path, ...], db_path: Path | None, debug: bool) -> None:
    """Import OSV records (JSON, YAML, directories, all.zip), a KEV catalogue (JSON) or EPSS scores (CSV)."""
    from shared.vulndb import db as vdb
    from shared.vulndb.importer import import_paths

    with _errors(debug):
        path = db_path or vdb.default_path()
        stats = import_paths(path, list(paths))
        for w in stats.warnings:
            click.echo(f"hullwatch: warning: {w}", err=True)
        click.echo(
            f"{path}: {stats.written} records written, {stats.unchanged} unchanged, {stats.withdrawn} withdrawn, "
            f"{stats.kev} KEV entries, {stats.epss} EPSS scores from {stats.files} files"
        )


@db.command("update")
@_DB_OPTION
@click.option("--ecosystem", "ecosystems", multiple=True, help="OSV ecosystem to fetch (repeatable).")
@click.option("--base-url", envvar="HULLWATCH_OSV_BASE_URL", help="Where the per-ecosystem all.zip files live.")
@click.option("--debug", is_flag=True)
def db_update(db_path: Path | None, ecosystems: tuple[str, ...], base_url: str | None, debug: bool) -> None:
    """Download OSV's per-ecosystem exports (conditional requests) and import them."""
    from shared.vulndb import db as vdb
    from shared.vulndb.update import update

    with _errors(debug):
        path = db_path or vdb.default_path()
        res = update(path, ecosystems or None, base_url)
        written = res.stats.written if res.stats else 0
        click.echo(
            f"{path}: fetched {', '.join(res.fetched) or 'nothing'}; unchanged {', '.join(res.unchanged) or 'none'}; "
            f"{written} records written"
        )


@db.command("info")
@_DB_OPTION
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--debug", is_flag=True)
def db_info(db_path: Path | None, fmt: str, debug: bool) -> None:
    """Counts per ecosystem, the newest record, the schema version."""
    import json as _json

    from shared.vulndb import db as vdb

    with _errors(debug):
        info = vdb.info(db_path or vdb.default_path())
        if fmt == "json":
            click.echo(_json.dumps(info, indent=2))
            return
        click.echo(f"database:        {info['path']}")
        click.echo(f"schema version:  {info['schema_version']}")
        click.echo(f"advisories:      {info['advisories']} ({info['withdrawn']} withdrawn)")
        click.echo(f"newest modified: {info['newest_modified']}")
        click.echo(f"KEV entries:     {info['kev_entries']}")
        click.echo(f"EPSS scores:     {info['epss_scores']}")
        ecos = info["ecosystems"]
        assert isinstance(ecos, dict)
        for eco, n in ecos.items():
            click.echo(f"  {eco:<40} {n}")


def _data_dir(path: Path | None) -> Path:
    if path is not None:
        return path
    from shared.vulndb import db as vdb

    return vdb.default_path().parent / "serve"


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", default=8787, show_default=True, type=int)
@click.option(
    "--registry",
    "registries",
    multiple=True,
    required=True,
    help="A registry host events may name (repeatable); every other host is refused.",
)
@click.option("--insecure-registry", "insecure", multiple=True, help="Registry reached over plain HTTP (loopback).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Store, inventories, alerts.")
@_DB_OPTION
@click.option("--debug", is_flag=True)
def serve(
    host: str,
    port: int,
    registries: tuple[str, ...],
    insecure: tuple[str, ...],
    data_dir: Path | None,
    db_path: Path | None,
    debug: bool,
) -> None:
    """Run the backend locally: Event Grid and Pub/Sub push endpoints, the scan worker, alerts printed."""
    from shared.service import local
    from shared.vulndb import db as vdb

    with _errors(debug):
        local.serve(host, port, _data_dir(data_dir), list(registries), db_path or vdb.default_path(), list(insecure))


@cli.command()
@click.option("--delta", is_flag=True, help="Only images whose packages have advisories added since last time.")
@click.option("--since-days", default=30, show_default=True, type=int, help="Images pushed or pulled this recently.")
@click.option("--registry", "registries", multiple=True, help="Registry hosts the store's images may come from.")
@click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Where 'hullwatch serve' keeps data."
)
@_DB_OPTION
@click.option("--debug", is_flag=True)
def rescan(
    delta: bool, since_days: int, registries: tuple[str, ...], data_dir: Path | None, db_path: Path | None, debug: bool
) -> None:
    """Re-match stored inventories against the current vulnerability data (the daily timer's work)."""
    from shared.service import local
    from shared.vulndb import db as vdb

    with _errors(debug):
        if data_dir is not None and not data_dir.is_dir():
            # a mistyped directory would otherwise be created, and rescan an empty store without a word
            raise UsageError(str(data_dir), "no such directory ('hullwatch serve --data-dir' keeps its data there)")
        local.rescan(  # prints its own summary
            _data_dir(data_dir),
            db_path or vdb.default_path(),
            delta=delta,
            since_days=since_days,
            registries=list(registries),
        )


def main() -> None:
    try:
        cli.main(prog_name="hullwatch", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("interrupted", 130)
    except click.ClickException as exc:
        # usage errors (an unknown flag, a missing argument) are one line too
        _fail(f"{exc.format_message()} (see hullwatch --help)", EXIT_INPUT)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
