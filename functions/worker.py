"""Queue trigger ``scan_worker``: one scan request from the Storage queue -> ``ScanService.handle``.

Retries and the poison queue are the platform's: a failure raises, the host makes the
message visible again, and after ``maxDequeueCount`` attempts (host.json, default 5) moves it
to ``<queue>-poison``. The reason is recorded when that happens (``failures/<queue>/...`` in
the blob store, and the log). A message that can never succeed (not a scan request, a
registry that is not configured, an image the registry refuses) is not retried: it goes
straight to the poison queue with its reason, through an output binding, and is acknowledged.

A ``rescan-batch`` message re-matches its images one after the other. An image that fails on
its own is recorded (``failures/<queue>/...``, as a single-image RESCAN message one can
replay) and the message still completes, so the other images are not retried or poisoned with
it; a failure that is not the image's raises and the whole message is retried (rescans are
idempotent).
"""

from __future__ import annotations

import json
import logging

import azure.functions as func
from pydantic import ValidationError

from shared.composition import components, scan_queue_name
from shared.errors import InputError
from shared.service.messages import BatchOutcome, ScanMessage, Skip

log = logging.getLogger("hullwatch.functions.worker")

bp = func.Blueprint()

SCAN_QUEUE = scan_queue_name()
POISON_QUEUE = f"{SCAN_QUEUE}-poison"
QUEUE_CONNECTION = "AzureWebJobsStorage"


@bp.function_name("scan_worker")
@bp.queue_trigger(arg_name="msg", queue_name=SCAN_QUEUE, connection=QUEUE_CONNECTION)
@bp.queue_output(arg_name="poison", queue_name=POISON_QUEUE, connection=QUEUE_CONNECTION)
def scan_worker(msg: func.QueueMessage, poison: func.Out[str]) -> None:
    c = components()
    message_id, attempts = msg.id or "?", msg.dequeue_count
    try:
        outcome = c.worker().handle(ScanMessage.model_validate_json(msg.get_body()))
    except (ValidationError, InputError) as exc:  # retrying cannot help: poison now, with the reason
        log.error("message %s refused: %s", message_id, exc)
        poison.set(json.dumps(c.record_failure(SCAN_QUEUE, message_id, msg.get_body(), str(exc), attempts)))
        return
    except Exception as exc:
        final = attempts is not None and attempts >= c.settings.max_dequeue_count
        log.exception(
            "message %s failed (attempt %s)%s", message_id, attempts, "; to the poison queue" if final else ""
        )
        if final:
            c.record_failure(SCAN_QUEUE, message_id, msg.get_body(), f"{type(exc).__name__}: {exc}", attempts)
        raise
    if isinstance(outcome, Skip):
        log.info("message %s skipped: %s", message_id, outcome.reason)
    elif isinstance(outcome, BatchOutcome):
        c.record_batch_failures(SCAN_QUEUE, message_id, outcome, attempts)
        level = logging.WARNING if outcome.failures else logging.INFO
        log.log(level, "message %s (%s): %s", message_id, outcome.event_id, outcome.summary())
    else:
        log.info("message %s: %s", message_id, outcome.model_dump_json())
