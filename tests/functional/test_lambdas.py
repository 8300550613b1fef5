"""The Lambda handlers with real event payloads against moto server (SQS, DynamoDB for idempotency).

* ``ecr_push``: the EventBridge "ECR Image Action" sample from AWS's documentation; a replayed
  event enqueues one message (Powertools idempotency on DynamoDB); a forged event is refused.
* ``scan_worker``: SQS batches as the Lambda poller delivers them (messages sent to and received
  from the queue, then shaped as the ``aws:sqs`` event); a poison record fails alone.
* ``daily_rescan``: the EventBridge scheduled event; rescan-batch messages of 200 images reach SQS,
  ten (at most 256 KiB) to a ``SendMessageBatch``; the scan worker handles one, an image failing alone.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
import requests

from shared import composition
from shared.composition import Settings
from shared.service.messages import Action, ScanMessage
from shared.stores.models import ImageRecord
from shared.stores.sqlite import SQLiteStore
from tests.conftest import require_module
from tests.support.services import start_moto

EVENTS = Path(__file__).resolve().parent.parent / "events"
REGION = "us-east-1"
TABLE = "hullwatch-idempotency"
QUEUE = "scan-requests"
ECR_SAMPLE = json.loads((EVENTS / "ecr-eventbridge-image-push.json").read_text())
ECR_REGISTRY = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
SCHEDULED_EVENT = {
    "version": "0",
    "id": "89d1a02d-5ec7-412e-82f5-13505f849b41",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-01-01T02:00:00Z",
    "region": REGION,
    "resources": [f"arn:aws:events:{REGION}:123456789012:rule/hullwatch-daily-rescan"],
    "detail": {},
}


@dataclass
class LambdaContext:
    function_name: str = "hullwatch-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:hullwatch-test"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_module("moto.server", "pip install 'moto[server]'")
    require_module("aws_lambda_powertools", "pip install -e '.[aws]'")
    svc = start_moto(tmp_path_factory.mktemp("moto"))
    env = {
        "AWS_ENDPOINT_URL": svc.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_SERVICE_NAME": "hullwatch",
        "POWERTOOLS_METRICS_NAMESPACE": "hullwatch",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "HULLWATCH_IDEMPOTENCY_TABLE": TABLE,
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            mp.delenv(key, raising=False)
        try:
            yield svc.url
        finally:
            svc.stop()


@dataclass
class Aws:
    url: str
    sqs: Any
    queue_url: str
    settings: Settings

    def messages(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
            ).get("Messages", [])
            if not got:
                return out
            out.extend(got)


@pytest.fixture
def aws(moto: str, tmp_path: Path) -> Iterator[Aws]:
    requests.post(f"{moto}/moto-api/reset", timeout=5).raise_for_status()
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    settings = Settings(
        registry_allowlist=(ECR_REGISTRY,),
        scan_queue_url=queue_url,
        idempotency_table=TABLE,
        state_dir=tmp_path / "state",
        vulndb_path=tmp_path / "vulndb.sqlite",
        aws_endpoint_url=moto,
    )
    composition.reset(settings)
    try:
        yield Aws(moto, sqs, queue_url, settings)
    finally:
        composition.reset()


def handler_module(name: str) -> ModuleType:
    return importlib.import_module(f"lambdas.{name}.handler")


# -- ecr_push --------------------------------------------------------------------------------------------------------


def test_ecr_push_enqueues_one_scan_request_however_often_the_event_arrives(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    ecr_push = handler_module("ecr_push")
    first = ecr_push.handler(json.loads(json.dumps(ECR_SAMPLE)), LambdaContext())
    assert '"ScanRequestsQueued"' in capsys.readouterr().out  # CloudWatch embedded metric format
    replay = ecr_push.handler(json.loads(json.dumps(ECR_SAMPLE)), LambdaContext())
    assert first["outcome"] == "queued" and replay == first  # the stored result, not a second send
    assert '"EventsReplayed"' in capsys.readouterr().out
    (message,) = aws.messages()
    msg = ScanMessage.model_validate_json(message["Body"])
    assert (msg.action, msg.registry, msg.repository, msg.tag, msg.source) == (
        Action.PUSH,
        ECR_REGISTRY,
        "my-repository-name",
        "latest",
        "ecr",
    )
    assert (msg.event_id, msg.aws_account, msg.aws_region) == (ECR_SAMPLE["id"], "123456789012", "us-west-2")
    # the idempotency record is keyed by the event id
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=TABLE)["Items"]
    assert len(items) == 1 and items[0]["status"]["S"] == "COMPLETED"


def test_ecr_delete_is_enqueued(aws: Aws) -> None:
    event = json.loads((EVENTS / "ecr-eventbridge-image-delete.json").read_text())
    assert handler_module("ecr_push").handler(event, LambdaContext())["outcome"] == "queued"
    (message,) = aws.messages()
    assert ScanMessage.model_validate_json(message["Body"]).action is Action.DELETE


def test_ecr_forged_account_is_refused_and_not_enqueued(aws: Aws) -> None:
    event = json.loads(json.dumps(ECR_SAMPLE))
    event["id"] = "forged-0001"
    event["account"] = "999999999999"
    result = handler_module("ecr_push").handler(event, LambdaContext())
    assert result["outcome"] == "refused" and "not a configured registry" in result["reason"]
    assert aws.messages() == []


def test_ecr_failed_push_is_skipped(aws: Aws) -> None:
    event = json.loads(json.dumps(ECR_SAMPLE))
    event["id"] = "failed-0001"
    event["detail"]["result"] = "FAILURE"
    assert handler_module("ecr_push").handler(event, LambdaContext())["outcome"] == "skipped"
    assert aws.messages() == []


# -- scan_worker ---------------------------------------------------------------------------------------------------


def sqs_event(aws: Aws, bodies: list[str]) -> dict[str, Any]:
    """Send the bodies to the queue and receive them back, shaped as Lambda's SQS poller delivers them."""
    for body in bodies:
        aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=body)
    received = aws.messages()
    assert len(received) == len(bodies)
    arn = f"arn:aws:sqs:{REGION}:123456789012:{QUEUE}"
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": REGION,
            }
            for m in received
        ]
    }


def delete_request(event_id: str) -> str:
    return ScanMessage(
        action=Action.DELETE,
        registry=ECR_REGISTRY,
        repository="my-repository-name",
        digest="sha256:" + event_id.encode().hex().ljust(64, "0")[:64],
        source="ecr",
        event_id=event_id,
    ).model_dump_json()


def test_scan_worker_reports_only_the_poison_record(aws: Aws) -> None:
    bodies = [delete_request("evt-1"), '{"action": "push", "registry": 42}', delete_request("evt-2")]
    event = sqs_event(aws, bodies)
    poison_id = event["Records"][1]["messageId"]
    result = handler_module("scan_worker").handler(event, LambdaContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": poison_id}]}
    (record_file,) = list((aws.settings.blob_dir / "failures" / QUEUE).glob("*.json"))
    record = json.loads(record_file.read_text())
    assert record["message_id"] == poison_id and record["attempts"] == 1
    assert "ValidationError" in record["reason"]


def test_scan_worker_refuses_a_forged_registry_alone(aws: Aws) -> None:
    forged = ScanMessage(
        action=Action.PUSH,
        registry="169.254.169.254",
        repository="latest/meta-data",
        tag="x",
        source="ecr",
        event_id="forged",
    ).model_dump_json()
    event = sqs_event(aws, [delete_request("evt-3"), forged])
    result = handler_module("scan_worker").handler(event, LambdaContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}


def test_scan_worker_whole_batch_success_reports_no_failures(aws: Aws) -> None:
    event = sqs_event(aws, [delete_request("evt-4"), delete_request("evt-5")])
    assert handler_module("scan_worker").handler(event, LambdaContext()) == {"batchItemFailures": []}


# -- daily_rescan --------------------------------------------------------------------------------------------------


def test_daily_rescan_fans_out_in_batch_messages(aws: Aws) -> None:
    now = datetime.now(UTC)
    with SQLiteStore(aws.settings.sqlite_file) as store:
        for i in range(450):
            digest = f"sha256:{i:064x}"
            store.put_image(
                ImageRecord(
                    digest=digest,
                    references=[f"{ECR_REGISTRY}/app:{i}"],
                    inventory_key=f"inventories/{i}.json",
                    pushed_at=now,
                )
            )
        store.put_image(ImageRecord(digest="sha256:" + "f" * 64, references=[], inventory_key=None, pushed_at=now))
    result = handler_module("daily_rescan").handler(SCHEDULED_EVENT, LambdaContext())
    assert (result["queued"], result["messages"]) == (450, 3)
    msgs = [ScanMessage.model_validate_json(m["Body"]) for m in aws.messages()]
    assert len(msgs) == 3 and {m.action for m in msgs} == {Action.RESCAN_BATCH}
    assert sorted(len(m.digests or ()) for m in msgs) == [50, 200, 200]
    named = [d for m in msgs for d in m.digests or ()]
    assert len(named) == 450 and set(named) == {f"sha256:{i:064x}" for i in range(450)}


class CountingSqs:
    """A real SQS client that counts its ``SendMessageBatch`` calls."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.batches: list[int] = []

    def send_message_batch(self, **kwargs: Any) -> Any:
        self.batches.append(len(kwargs["Entries"]))
        return self.client.send_message_batch(**kwargs)


def test_sqs_sends_ten_a_call_and_splits_by_size(aws: Aws) -> None:
    def batch(n: int, size: int) -> ScanMessage:
        return ScanMessage(
            action=Action.RESCAN_BATCH,
            registry="",
            repository="",
            source="rescan",
            event_id=f"b{n}",
            digests=tuple(f"sha256:{n:08x}{i:056x}" for i in range(size)),
        )

    counting = CountingSqs(aws.sqs)
    queue = composition.SqsScanQueue(aws.queue_url, counting)
    # 23 messages of 200 digests (about 15 KB each): ten to a call
    assert queue.send(batch(n, 200) for n in range(23)) == 23
    assert counting.batches == [10, 10, 3]
    assert len(aws.messages()) == 23
    # ten messages of about 40 KB: together past SendMessageBatch's 256 KiB, so two calls
    counting.batches.clear()
    big = [batch(100 + n, 540) for n in range(10)]
    assert all(35_000 < len(m.model_dump_json()) < 45_000 for m in big)
    assert queue.send(big) == 10
    assert counting.batches == [6, 4]
    got = [ScanMessage.model_validate_json(m["Body"]) for m in aws.messages()]
    assert sorted(m.event_id for m in got) == sorted(m.event_id for m in big)


def test_scan_worker_handles_a_rescan_batch_an_image_failing_alone(
    aws: Aws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from shared.vulndb.importer import import_paths
    from tests.support.inventories import advisory, inventory

    osv = tmp_path / "osv"
    osv.mkdir()
    (osv / "libfoo.json").write_text(json.dumps(advisory("TEST-LIBFOO-1", "libfoo", "9.9-r0", "2026-01-01T00:00:00Z")))
    import_paths(aws.settings.vulndb_path or tmp_path / "vulndb.sqlite", [osv])
    service = composition.components().service()
    digests = [f"sha256:{n:064x}" for n in range(4)]
    for n in range(4):
        service.ingest(inventory(n, with_libfoo=n in (1, 3)), f"{ECR_REGISTRY}/app{n}:1", pushed_at=datetime.now(UTC))
    broken = service.store.get_image(digests[2])
    assert broken is not None and broken.inventory_key
    service.blobs.put(broken.inventory_key, b"{truncated")
    batch = ScanMessage(
        action=Action.RESCAN_BATCH, registry="", repository="", source="rescan", event_id="daily-x", digests=digests
    ).model_dump_json()
    no_digests = json.dumps(
        {"action": "rescan-batch", "registry": "", "repository": "", "source": "r", "event_id": "e"}
    )
    event = sqs_event(aws, [batch, no_digests])
    started = datetime.now(UTC)
    result = handler_module("scan_worker").handler(event, LambdaContext())
    # the batch record succeeded (its image failing alone does not return it to the queue); the malformed one failed
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    rematched = {d for d in digests if (i := service.store.get_image(d)) and i.matched_at and i.matched_at >= started}
    assert rematched == {digests[0], digests[1], digests[3]}
    records = [json.loads(f.read_text()) for f in (aws.settings.blob_dir / "failures" / QUEUE).glob("*.json")]
    mine = [r for r in records if r["message_id"] == f"{event['Records'][0]['messageId']}/{digests[2]}"]
    assert len(records) == 2 and len(mine) == 1 and "ValidationError" in mine[0]["reason"]
    assert ScanMessage.model_validate_json(mine[0]["message"]).digest == digests[2]
    assert '"RescanImagesFailed"' in capsys.readouterr().out


# -- vulndb_refresh ------------------------------------------------------------------------------------------------

BUCKET = "hullwatch-inventories"


def _zip(records: list[dict[str, Any]]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for rec in records:
            zf.writestr(f"{rec['id']}.json", json.dumps(rec))
    return buf.getvalue()


def test_vulndb_refresh_publishes_to_s3_and_queues_only_affected_images(aws: Aws, tmp_path: Path) -> None:
    from tests.support.inventories import advisory, inventory
    from tests.support.registries import FakeServer

    served = {"records": [advisory("TEST-BUSYBOX-1", "busybox", "9.9-r0", "2026-01-01T00:00:00Z")], "etag": '"v1"'}

    def respond(method: str, path: str, headers: dict[str, str]) -> Any:
        if path != "/Alpine/all.zip":
            return 404, {}, b""
        if headers.get("If-None-Match") == served["etag"]:
            return 304, {}, b""
        return 200, {"Content-Type": "application/zip", "ETag": served["etag"]}, _zip(served["records"])

    mirror = FakeServer(respond)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    settings = aws.settings.model_copy(
        update={"inventory_bucket": BUCKET, "blobs": "s3", "osv_base_url": mirror.url, "ecosystems": ("Alpine",)}
    )
    composition.reset(settings)
    refresh = handler_module("vulndb_refresh")
    try:
        first = refresh.handler(json.loads(json.dumps(SCHEDULED_EVENT)), LambdaContext())
        assert first["fetched"] == ["Alpine"] and first["queued"] == 0
        pointer = json.loads(s3.get_object(Bucket=BUCKET, Key="vulndb/current.json")["Body"].read())
        assert pointer["version"] == first["version"] and pointer["key"] == f"{first['version']}.sqlite.gz"
        s3.head_object(Bucket=BUCKET, Key=f"vulndb/{pointer['key']}")  # keys are relative to the prefix

        # three stored images, one of them with the package a new advisory will name
        service = composition.components().service()
        for n in range(3):
            service.ingest(inventory(n, with_libfoo=n == 1), f"{ECR_REGISTRY}/app{n}:1", pushed_at=datetime.now(UTC))

        served["records"] = [*served["records"], advisory("TEST-LIBFOO-1", "libfoo", "9.9-r0", "2026-02-01T00:00:00Z")]
        served["etag"] = '"v2"'
        second = refresh.handler(json.loads(json.dumps(SCHEDULED_EVENT)), LambdaContext())
        assert second["queued"] == 1 and second["version"] != first["version"]
        (message,) = aws.messages()
        msg = ScanMessage.model_validate_json(message["Body"])
        assert (msg.action, msg.digests) == (Action.RESCAN_BATCH, (f"sha256:{1:064x}",))

        # nothing new upstream (304): the same version, nothing queued
        third = refresh.handler(json.loads(json.dumps(SCHEDULED_EVENT)), LambdaContext())
        assert (third["fetched"], third["queued"], third["version"]) == ([], 0, second["version"])
        assert aws.messages() == []

        # a scan worker on a fresh disk installs the published version from S3 and alerts on the rescan
        before = settings.alerts_path.read_text().splitlines()  # the ingests' busybox alerts
        worker = settings.model_copy(update={"vulndb_path": tmp_path / "worker" / "vulndb.sqlite"})
        composition.reset(worker)
        event = sqs_event(aws, [message["Body"]])
        assert handler_module("scan_worker").handler(event, LambdaContext()) == {"batchItemFailures": []}
        assert composition.components().vulndb_channel().installed() == second["version"]
        new = [json.loads(line) for line in worker.alerts_path.read_text().splitlines()[len(before) :]]
        assert [(a["data"]["vulnerability"]["id"], a["subject"]) for a in new] == [
            ("TEST-LIBFOO-1", f"{ECR_REGISTRY}/app1:1")
        ]
    finally:
        mirror.stop()
