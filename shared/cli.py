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
from shared.errors import HullwatchError, InputError
from shared.scanning.manifest import Platform
from shared.scanning.scanner import ScanRequest
from shared.scanning.sources.base import ImageHandle, LayerRef

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_INPUT = 2

FORMATS = ("table", "json", "cyclonedx")


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
        err = Console(stderr=True)
        if err.is_terminal and not os.environ.get("CI"):
            results = _scan_with_progress(req, err)
        else:
            results = run_scan(req)
        _emit(results, fmt, output, list_executables)


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
