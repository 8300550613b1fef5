"""EventBridge "ECR Image Action" (PUSH/DELETE, SUCCESS) -> a scan request on SQS.

EventBridge delivers at least once: the handler is idempotent on the event id
(DynamoDB, ``HULLWATCH_IDEMPOTENCY_TABLE``), so a replayed event enqueues nothing new.
A malformed or forged event (a registry not in ``HULLWATCH_REGISTRY_ALLOWLIST``) is
logged and answered, never retried; a failure to enqueue raises, and Lambda retries
the asynchronous invocation (then its on-failure destination).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.composition import components
from shared.service.errors import InvalidEvent
from shared.service.messages import Skip

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def _replayed(response: Any, record: DataRecord) -> Any:
    """A redelivered event: the stored answer is returned and nothing is enqueued again."""
    metrics.add_metric(name="EventsReplayed", unit=MetricUnit.Count, value=1)
    return response


_settings = components().settings
persistence = DynamoDBPersistenceLayer(table_name=_settings.idempotency_table or "hullwatch-idempotency")
idempotency = IdempotencyConfig(
    event_key_jmespath="id", expires_after_seconds=_settings.idempotency_ttl, response_hook=_replayed
)


@metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_source(data_class=EventBridgeEvent)
@idempotent(config=idempotency, persistence_store=persistence)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    c = components()
    try:
        item = c.intake().ecr_event(event.raw_event)
    except InvalidEvent as exc:  # malformed or forged: refused, never retried
        logger.error("ECR event refused", extra={"event_id": event.get_id, "reason": str(exc)})
        metrics.add_metric(name="EventsRefused", unit=MetricUnit.Count, value=1)
        return {"outcome": "refused", "event_id": event.get_id, "reason": str(exc)}
    if isinstance(item, Skip):
        logger.info("ECR event skipped", extra={"event_id": event.get_id, "reason": item.reason})
        metrics.add_metric(name="EventsSkipped", unit=MetricUnit.Count, value=1)
        return {"outcome": "skipped", "event_id": event.get_id, "reason": item.reason}
    message_id = c.scan_queue().put(item)
    metrics.add_metric(name="ScanRequestsQueued", unit=MetricUnit.Count, value=1)
    logger.info("scan request queued", extra={"event_id": item.event_id, "image": item.reference})
    return {"outcome": "queued", "event_id": item.event_id, "image": item.reference, "message_id": message_id}
