"""EventBridge schedule -> rescan requests for recently seen and running images, in batches, to SQS.

The handler only lists and enqueues; the scan workers re-match the stored
inventories. One ``rescan-batch`` message names up to ``HULLWATCH_RESCAN_BATCH_SIZE``
images (200) and ten messages go in one ``SendMessageBatch`` (fewer when they would
pass its 256 KiB), so 100,000 images are 500 messages in 50 calls. A failed send
raises and the schedule's retry policy runs it again: a repeated rescan is harmless
(idempotent writes, no second alert).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.composition import components
from shared.service.messages import ScanMessage
from shared.service.rescan import image_count

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    c = components()
    images = 0

    def counted() -> Iterator[ScanMessage]:
        nonlocal images
        for message in c.daily_rescan():
            images += image_count(message)
            yield message

    messages = c.scan_queue().send(counted())  # sent while the listing goes on
    metrics.add_metric(name="RescansQueued", unit=MetricUnit.Count, value=images)
    metrics.add_metric(name="RescanMessagesSent", unit=MetricUnit.Count, value=messages)
    logger.info("daily rescan queued", extra={"event_id": event.get_id, "images": images, "messages": messages})
    return {"queued": images, "messages": messages, "event_id": event.get_id}
