"""Registry push triggers: they validate an event and enqueue a scan request, nothing more.

* ``acr_events`` — Event Grid trigger for ACR ``ImagePushed``/``ImageDeleted``, in the Event Grid or the
  CloudEvents schema (the host hands either; the subscription's delivery schema decides). A malformed or
  forged event (a registry not in ``HULLWATCH_REGISTRY_ALLOWLIST``) is logged and acknowledged: raising
  would only make Event Grid redeliver the same refusal.
* ``gar_push`` — HTTP trigger for Artifact Registry / Container Registry notifications pushed by Pub/Sub
  (``POST /api/registry/gar``, function key in the push endpoint's ``?code=``). With
  ``HULLWATCH_PUBSUB_AUDIENCE`` set, the push's OIDC token must verify (Google issuer, that audience,
  signature against Google's keys), else 401.

Scan requests go to the Storage queue ``HULLWATCH_SCAN_QUEUE`` through a queue output binding.
"""

from __future__ import annotations

import logging
from typing import Any

import azure.functions as func

from shared.composition import components, scan_queue_name
from shared.service.cloud_credentials import PushTokenRejected
from shared.service.errors import InvalidEvent, Retryable
from shared.service.messages import ScanMessage, Skip

log = logging.getLogger("hullwatch.functions.registry_events")

bp = func.Blueprint()

SCAN_QUEUE = scan_queue_name()
QUEUE_CONNECTION = "AzureWebJobsStorage"


def event_payload(event: func.EventGridEvent | func.CloudEvent) -> dict[str, Any]:
    """The delivered event back in its own schema, as the shared parser reads it."""
    if isinstance(event, func.CloudEvent):
        return {
            "specversion": event.specversion,
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "subject": event.subject,
            "time": event.time.isoformat() if event.time else None,
            "data": event.get_json(),
        }
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": event.event_time.isoformat() if event.event_time else None,
        "dataVersion": event.data_version,
        "data": event.get_json(),
    }


def enqueue(item: ScanMessage | Skip, out: func.Out[str]) -> None:
    if isinstance(item, Skip):
        log.info("event %s skipped: %s", item.event_id, item.reason)
        return
    out.set(item.model_dump_json())
    log.info("event %s: %s %s queued", item.event_id, item.action.value, item.reference)


@bp.function_name("acr_events")
@bp.event_grid_trigger(arg_name="event")
@bp.queue_output(arg_name="scan", queue_name=SCAN_QUEUE, connection=QUEUE_CONNECTION)
def acr_events(event: func.EventGridEvent, scan: func.Out[str]) -> None:
    try:
        item = components().intake().acr_event(event_payload(event))
    except InvalidEvent as exc:  # malformed or forged: acknowledged, never redelivered
        log.error("ACR event %s refused: %s", event.id, exc)
        return
    enqueue(item, scan)


@bp.function_name("gar_push")
@bp.route(route="registry/gar", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.queue_output(arg_name="scan", queue_name=SCAN_QUEUE, connection=QUEUE_CONNECTION)
def gar_push(req: func.HttpRequest, scan: func.Out[str]) -> func.HttpResponse:
    try:
        item = components().intake().gar_push(req.get_body(), req.headers.get("Authorization"))
    except PushTokenRejected as exc:
        log.warning("Pub/Sub push refused: %s", exc)
        return func.HttpResponse("unauthorized\n", status_code=401, headers={"WWW-Authenticate": "Bearer"})
    except InvalidEvent as exc:
        log.error("Pub/Sub push refused: %s", exc)
        return func.HttpResponse(f"{exc}\n", status_code=400, mimetype="text/plain")
    except Retryable as exc:  # Pub/Sub redelivers on any status but 2xx/102
        log.warning("Pub/Sub push deferred: %s", exc)
        return func.HttpResponse("try again later\n", status_code=503, headers={"Retry-After": "30"})
    enqueue(item, scan)
    return func.HttpResponse(status_code=200 if isinstance(item, Skip) else 202)
