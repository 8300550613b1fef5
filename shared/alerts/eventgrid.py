"""Publishing alerts to an Azure Event Grid topic, as CloudEvents 1.0.

Each :class:`~shared.stores.models.AlertRecord` becomes one CloudEvent, the
same event :func:`shared.service.alerts.to_cloudevent` writes locally:
``id`` = the alert id (a fingerprint, so a consumer can deduplicate),
``type`` = the alert type, ``subject`` = the image reference, ``source`` =
``/hullwatch`` unless configured, ``time`` = when the alert was created,
``data`` = the finding summary (``application/json``).

The topic is an Event Grid basic topic (or domain) endpoint; the credential an
``AzureKeyCredential`` (the topic key, sent as ``aeg-sas-key``), an
``AzureSasCredential``, or an Entra ``TokenCredential`` (``DefaultAzureCredential()``
when none is given: managed identity in Azure; it needs the EventGrid Data
Sender role, and an https endpoint).

:meth:`EventGridPublisher.publish` raises :class:`EventGridPublishError` when
the topic did not take the event (after the SDK's retries), so the caller
leaves the alert unpublished for the outbox to retry.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from azure.core.credentials import AzureKeyCredential, AzureSasCredential, TokenCredential
from azure.core.exceptions import AzureError, HttpResponseError
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridPublisherClient

from shared.errors import HullwatchError
from shared.service.alerts import DEFAULT_SOURCE
from shared.stores.models import AlertRecord


class EventGridPublishError(HullwatchError):
    """The topic did not accept an event; the alert stays unpublished and is retried later."""


def to_event(alert: AlertRecord, source: str = DEFAULT_SOURCE) -> CloudEvent[Any]:
    """The alert as a CloudEvents 1.0 event for the Event Grid SDK."""
    created = alert.created_at if alert.created_at.tzinfo else alert.created_at.replace(tzinfo=UTC)
    return CloudEvent(
        source=source,
        type=alert.type,
        subject=alert.subject,
        id=alert.id,
        time=created.astimezone(UTC),
        data=alert.data,
        datacontenttype="application/json",
        specversion="1.0",
    )


class EventGridPublisher:
    """An :class:`~shared.service.alerts.AlertPublisher` that sends each alert to an Event Grid topic.

    ``retry_total`` and ``retry_backoff_factor`` tune the SDK's retries of each
    send (connection errors, 408, 429 and 5xx answers).
    """

    def __init__(
        self,
        endpoint: str,
        credential: AzureKeyCredential | AzureSasCredential | TokenCredential | None = None,
        *,
        source: str = DEFAULT_SOURCE,
        retry_total: int = 3,
        retry_backoff_factor: float = 0.5,
        client: EventGridPublisherClient | None = None,
    ) -> None:
        if client is None:
            if credential is None:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
            client = EventGridPublisherClient(endpoint, credential)
        self.endpoint = endpoint
        self.source = source
        self._client = client
        self.retry_total = retry_total
        self.retry_backoff_factor = retry_backoff_factor

    def publish(self, alert: AlertRecord) -> None:
        try:
            self._client.send(
                [to_event(alert, self.source)],
                retry_total=self.retry_total,
                retry_backoff_factor=self.retry_backoff_factor,
            )
        except HttpResponseError as exc:
            raise EventGridPublishError(
                f"Event Grid {self.endpoint}: alert {alert.id} refused (HTTP {exc.status_code}: {exc.reason})"
            ) from exc
        except AzureError as exc:
            raise EventGridPublishError(
                f"Event Grid {self.endpoint}: alert {alert.id} not sent ({type(exc).__name__}: {exc.message})"
            ) from exc

    def close(self) -> None:
        self._client.close()
