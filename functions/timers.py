"""Timers: the daily rescan, the vulnerability database refresh, and the alerts outbox.

* ``daily_rescan`` (02:00 UTC) — rescan requests for images pushed, pulled or scanned in the last
  ``HULLWATCH_RESCAN_WINDOW_DAYS`` days and images reported running, fanned out through the scan
  queue: the timer only lists, the workers match. One ``rescan-batch`` message names up to
  ``HULLWATCH_RESCAN_BATCH_SIZE`` images (200): the host writes each queue message with its own
  HTTP call after the function returns, and the timer must finish within the plan's 10 minutes, so
  100,000 images go out as 500 messages, not 100,000.
* ``vulndb_refresh`` (hourly, at :15) — updates the OSV database (conditional downloads), publishes
  the new version to Blob storage for the workers, and queues rescan-batch requests at once for only
  the images whose packages the new or changed advisories name.
* ``alerts_outbox`` (every 5 minutes) — republishes alerts whose publication failed.

Schedules are NCRONTAB (with seconds), in UTC.
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared.composition import components, scan_queue_name
from shared.service.rescan import image_count

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
    messages = list(components().daily_rescan())
    scan.set([m.model_dump_json() for m in messages])
    log.info(
        "daily rescan: %d images queued in %d messages%s",
        sum(image_count(m) for m in messages),
        len(messages),
        " (past due)" if timer.past_due else "",
    )


@bp.function_name("vulndb_refresh")
@bp.timer_trigger(arg_name="timer", schedule=VULNDB_REFRESH_SCHEDULE, run_on_startup=False, use_monitor=True)
@bp.queue_output(arg_name="scan", queue_name=SCAN_QUEUE, connection=QUEUE_CONNECTION)
def vulndb_refresh(timer: func.TimerRequest, scan: func.Out[list[str]]) -> None:
    report = components().refresh_vulndb()
    scan.set([m.model_dump_json() for m in report.messages])
    log.info(
        "vulnerability database %s (fetched %s; unchanged %d); %d affected images queued in %d messages",
        report.version,
        ", ".join(report.fetched) or "nothing",
        len(report.unchanged),
        report.rescans,
        len(report.messages),
    )


@bp.function_name("alerts_outbox")
@bp.timer_trigger(arg_name="timer", schedule=ALERTS_OUTBOX_SCHEDULE, run_on_startup=False, use_monitor=True)
def alerts_outbox(timer: func.TimerRequest) -> None:
    report = components().service().publish_pending()
    if report.failed:
        log.warning("alerts outbox: %d published, %d still failing: %s", report.published, report.failed, report.errors)
    else:
        log.info("alerts outbox: %d published", report.published)
