"""SQS scan requests -> ``ScanService.handle``, one record at a time, with partial batch failures.

Each record that fails is reported in ``batchItemFailures`` and only it returns to the queue;
the rest of the batch is deleted. After the queue's ``maxReceiveCount`` a failing record moves
to the dead-letter queue; each failure's reason is logged and recorded
(``failures/<queue>/...`` in the blob store) with its receive count.

A ``rescan-batch`` record re-matches its images in turn; an image that fails on its own is
recorded (as a single-image RESCAN one can replay) and counted in ``RescanImagesFailed``, and
the record still succeeds so the other images are not retried with it. A failure that is not
the image's raises and only that record returns to the queue.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.composition import components
from shared.service.messages import BatchOutcome, ScanMessage, Skip

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method
def record_handler(record: SQSRecord) -> dict[str, Any]:
    c = components()
    try:
        outcome = c.worker().handle(ScanMessage.model_validate_json(record.body))
    except Exception as exc:
        attempts = int(record.attributes.approximate_receive_count or 0) or None
        logger.exception("scan request failed", extra={"message_id": record.message_id, "attempts": attempts})
        c.record_failure(
            c.settings.scan_queue, record.message_id, record.body, f"{type(exc).__name__}: {exc}", attempts
        )
        metrics.add_metric(name="ScanRequestsFailed", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name="ScanRequestsHandled", unit=MetricUnit.Count, value=1)
    if isinstance(outcome, BatchOutcome):
        attempts = int(record.attributes.approximate_receive_count or 0) or None
        c.record_batch_failures(c.settings.scan_queue, record.message_id, outcome, attempts)
        metrics.add_metric(name="RescanImagesHandled", unit=MetricUnit.Count, value=len(outcome.results))
        if outcome.failures:
            metrics.add_metric(name="RescanImagesFailed", unit=MetricUnit.Count, value=len(outcome.failures))
            logger.warning(
                "rescan batch: some images failed",
                extra={"message_id": record.message_id, "failed": [f.digest for f in outcome.failures]},
            )
        return {
            "event_id": outcome.event_id,
            "rescanned": outcome.rescanned,
            "skipped": outcome.skipped,
            "failed": [f.model_dump() for f in outcome.failures],
        }
    return outcome.model_dump(mode="json") | {"skipped": isinstance(outcome, Skip)}


@metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
