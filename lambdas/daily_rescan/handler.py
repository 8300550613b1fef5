"""EventBridge schedule -> RESCAN requests for recently seen and running images, in batches, to SQS.

The handler only lists and enqueues (ten messages a ``SendMessageBatch``); the scan
workers re-match the stored inventories. A failed send raises and the schedule's
retry policy runs it again: a repeated RESCAN is harmless (idempotent writes, no
second alert).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.composition import components

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    c = components()
    queued = sum(c.scan_queue().send(batch) for batch in c.daily_rescan())
    metrics.add_metric(name="RescansQueued", unit=MetricUnit.Count, value=queued)
    logger.info("daily rescan queued", extra={"event_id": event.get_id, "images": queued})
    return {"queued": queued, "event_id": event.get_id}
