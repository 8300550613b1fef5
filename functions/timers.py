"""Timers: the daily rescan, the vulnerability database refresh, and the alerts outbox.

* ``daily_rescan`` (02:00 UTC) — RESCAN requests for images pushed, pulled or scanned in the last
  ``HULLWATCH_RESCAN_WINDOW_DAYS`` days and images reported running, listed in batches and fanned
  out through the scan queue: the timer only lists, the workers match.
* ``vulndb_refresh`` (hourly, at :15) — updates the OSV database (conditional downloads), publishes
  the new version to Blob storage for the workers, and queues RESCAN requests at once for only the
  images whose packages the new or changed advisories name.
* ``alerts_outbox`` (every 5 minutes) — republishes alerts whose publication failed.

Schedules are NCRONTAB (with seconds), in UTC.
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared.composition import components, scan_queue_name

log = logging.getLogger("hullwatch.functions.timers")

bp = func.Blueprint()

SCAN_QUEUE = scan_queue_name()
QUEUE_CONNECTION = "AzureWebJobsStorage"
DAILY_RESCAN_SCHEDULE = "0 0 2 * * *"
VULNDB_REFRESH_SCHEDULE = "0 15 * * * *"
ALERTS_OUTBOX_SCHEDULE = "0 */5 * * * *"


@bp.function_name("daily_rescan")
@bp.timer_trigger(arg_name="timer", schedule=DAILY_RESCAN_SCHEDULE, run_on_startup=False, use_monitor=True)
@bp.queue_output(arg_name="scan", queue_name=SCAN_QUEUE, connection=QUEUE_CONNECTION)
def daily_rescan(timer: func.TimerRequest, scan: func.Out[list[str]]) -> None:
    bodies = [m.model_dump_json() for batch in components().daily_rescan() for m in batch]
    scan.set(bodies)
    log.info("daily rescan: %d images queued%s", len(bodies), " (past due)" if timer.past_due else "")


@bp.function_name("vulndb_refresh")
@bp.timer_trigger(arg_name="timer", schedule=VULNDB_REFRESH_SCHEDULE, run_on_startup=False, use_monitor=True)
@bp.queue_output(arg_name="scan", queue_name=SCAN_QUEUE, connection=QUEUE_CONNECTION)
def vulndb_refresh(timer: func.TimerRequest, scan: func.Out[list[str]]) -> None:
    report = components().refresh_vulndb()
    scan.set([m.model_dump_json() for batch in report.messages for m in batch])
    log.info(
        "vulnerability database %s (fetched %s; unchanged %d); %d affected images queued",
        report.version,
        ", ".join(report.fetched) or "nothing",
        len(report.unchanged),
        report.rescans,
    )


@bp.function_name("alerts_outbox")
@bp.timer_trigger(arg_name="timer", schedule=ALERTS_OUTBOX_SCHEDULE, run_on_startup=False, use_monitor=True)
def alerts_outbox(timer: func.TimerRequest) -> None:
    report = components().service().publish_pending()
    if report.failed:
        log.warning("alerts outbox: %d published, %d still failing: %s", report.published, report.failed, report.errors)
    else:
        log.info("alerts outbox: %d published", report.published)
