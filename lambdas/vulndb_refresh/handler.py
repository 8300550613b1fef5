"""EventBridge schedule -> refresh the OSV database, publish it to S3, and queue rescans of what it changed.

The AWS twin of the ``vulndb_refresh`` timer of the Functions app. It starts from
the published version (so only ecosystems whose OSV export changed are downloaded,
with conditional requests), publishes the new file under the bucket's
``HULLWATCH_VULNDB_CONTAINER`` prefix (``vulndb/`` by default) with a version, and
sends rescan-batch requests to SQS (the daily rescan's batching) for only the images
whose packages the new or changed advisories name. Scan workers pick the new version up on their next check
(``HULLWATCH_VULNDB_CHECK_SECONDS``) and keep it open between invocations.

A failure raises and the schedule's retry policy runs it again: publishing an
unchanged database is a no-op, and a repeated RESCAN is harmless (idempotent writes,
no second alert). Images whose rescans could not be queued are matched against the
new data by the daily rescan at the latest.
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
    report = c.refresh_vulndb()
    queue = c.scan_queue()
    messages = queue.send(report.messages)
    queued = report.rescans
    metrics.add_metric(name="AdvisoryRescansQueued", unit=MetricUnit.Count, value=queued)
    metrics.add_metric(name="EcosystemsFetched", unit=MetricUnit.Count, value=len(report.fetched))
    logger.info(
        "vulnerability database refreshed",
        extra={
            "event_id": event.get_id,
            "version": report.version,
            "fetched": list(report.fetched),
            "unchanged": len(report.unchanged),
            "images": queued,
            "messages": messages,
        },
    )
    return {
        "version": report.version,
        "fetched": list(report.fetched),
        "unchanged": len(report.unchanged),
        "queued": queued,
        "event_id": event.get_id,
    }
