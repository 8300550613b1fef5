"""The Event Grid publisher against a local Event Grid topic stand-in (an HTTP server that records each POST).

What the topic receives is checked byte for byte against CloudEvents 1.0 (structured JSON, as an array) and
against the event the local publisher writes; a topic answering 500 makes ``publish`` raise, and the alert
then stays unpublished until the outbox publishes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from shared.service.alerts import publish_pending, store_and_publish, to_cloudevent
from shared.stores.models import AlertRecord
from tests.conftest import require_module
from tests.support.services import EventGridReceiver
from tests.support.services import eventgrid_receiver as eventgrid_receiver  # the session fixture

if TYPE_CHECKING:
    from shared.alerts.eventgrid import EventGridPublisher

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def make_alert(n: int = 1, **kw: object) -> AlertRecord:
    doc: dict[str, object] = {
        "id": f"{n:064x}",
        "type": "hullwatch.vulnerability.new",
        "subject": "registry.example/app:1.2",
        "image_digest": "sha256:" + "a" * 64,
        "created_at": T0,
        "data": {
            "image": {"reference": "registry.example/app:1.2", "digest": "sha256:" + "a" * 64},
            "vulnerability": {"id": f"CVE-2026-{n:04d}", "severity": "CRITICAL", "aliases": ["GHSA-xxxx"]},
            "fix_available": True,
            "fixed_versions": ["1.0.1"],
            "priority": 87.5,
            "résumé": "non-ASCII survives",
        },
    }
    doc.update(kw)
    return AlertRecord.model_validate(doc)


@pytest.fixture
def receiver(eventgrid_receiver: EventGridReceiver) -> Iterator[EventGridReceiver]:
    eventgrid_receiver.clear()
    yield eventgrid_receiver
    eventgrid_receiver.clear()


def publisher(receiver: EventGridReceiver, key: str | None = None, **options: Any) -> EventGridPublisher:
    require_module("azure.eventgrid", "pip install -e '.[azure]'")
    from azure.core.credentials import AzureKeyCredential

    from shared.alerts.eventgrid import EventGridPublisher

    options.setdefault("retry_backoff_factor", 0.01)
    return EventGridPublisher(receiver.url, AzureKeyCredential(key or receiver.key), **options)


def test_publish_posts_one_cloudevent_with_the_key(receiver: EventGridReceiver) -> None:
    alert = make_alert()
    publisher(receiver).publish(alert)
    (post,) = receiver.received
    assert post.path == "/api/events?api-version=2018-01-01"
    assert post.headers["aeg-sas-key"] == receiver.key
    assert "json" in post.headers["content-type"]
    body = post.json()
    assert isinstance(body, list) and len(body) == 1, "a CloudEvents JSON batch: an array"
    (event,) = body
    assert event["specversion"] == "1.0"
    assert event["id"] == alert.id
    assert event["type"] == "hullwatch.vulnerability.new"
    assert event["subject"] == "registry.example/app:1.2"
    assert event["source"] == "/hullwatch"
    assert event["datacontenttype"] == "application/json"
    assert event["data"] == alert.data
    assert datetime.fromisoformat(event["time"]) == T0


def test_event_is_the_one_the_local_publisher_writes(receiver: EventGridReceiver) -> None:
    alert = make_alert(2, created_at=datetime(2026, 3, 1, 14, 30, tzinfo=UTC) + timedelta(microseconds=250))
    publisher(receiver, source="/hullwatch/prod").publish(alert)
    (event,) = receiver.received[0].json()
    local = to_cloudevent(alert, "/hullwatch/prod")
    assert {k: event[k] for k in local if k != "time"} == {k: v for k, v in local.items() if k != "time"}
    assert datetime.fromisoformat(event["time"]) == datetime.fromisoformat(str(local["time"]))


def test_topic_failing_makes_publish_raise_after_the_retries(receiver: EventGridReceiver) -> None:
    from shared.alerts.eventgrid import EventGridPublishError

    receiver.status = 500
    with pytest.raises(EventGridPublishError, match="HTTP 500"):
        publisher(receiver, retry_total=1).publish(make_alert())
    assert len(receiver.received) == 2, "one try and the one retry asked for"


def test_wrong_key_is_refused(receiver: EventGridReceiver) -> None:
    from shared.alerts.eventgrid import EventGridPublishError

    with pytest.raises(EventGridPublishError, match="HTTP 401"):
        publisher(receiver, key="not-the-key").publish(make_alert())


def test_unreachable_topic_raises(receiver: EventGridReceiver) -> None:
    require_module("azure.eventgrid", "pip install -e '.[azure]'")
    from azure.core.credentials import AzureKeyCredential

    from shared.alerts.eventgrid import EventGridPublisher, EventGridPublishError

    closed = EventGridReceiver()
    url = closed.url
    closed.stop()
    p = EventGridPublisher(url, AzureKeyCredential("k"), retry_total=0)
    with pytest.raises(EventGridPublishError, match="not sent"):
        p.publish(make_alert())


def test_failed_publication_stays_in_the_outbox_until_it_goes_through(
    receiver: EventGridReceiver, tmp_path: Path
) -> None:
    from shared.stores.sqlite import SQLiteStore

    now = lambda: T0 + timedelta(minutes=5)  # noqa: E731
    with SQLiteStore(tmp_path / "store.sqlite") as store:
        p = publisher(receiver, retry_total=0)
        receiver.status = 500
        report = store_and_publish(store, p, [make_alert(1), make_alert(2)], now)
        assert (report.created, report.published, report.failed) == (2, 0, 2)
        pending = store.unpublished_alerts()
        assert [a.attempts for a in pending] == [1, 1]
        assert all("HTTP 500" in (a.last_error or "") for a in pending)

        receiver.status = 200
        receiver.received.clear()
        report = publish_pending(store, p, now)
        assert (report.published, report.failed) == (2, 0)
        assert store.unpublished_alerts() == []
        assert sorted(post.json()[0]["id"] for post in receiver.received) == [make_alert(1).id, make_alert(2).id]
