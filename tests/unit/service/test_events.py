"""Event parsers against the documented sample payloads in tests/events (see its README for the sources)."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.service import events
from shared.service.errors import InvalidEvent
from shared.service.messages import Action, ScanMessage, Skip

EVENTS = Path(__file__).resolve().parents[2] / "events"
ACR_DIGEST = "sha256:213bbc182920ab41e18edc2001e06abcca6735d87782d9cef68abd83941cf0e5"
GAR_DIGEST = "sha256:6ec128e26cd5f0ee1e5a7c4b5ab1d3b2e2e6a7c1b0d4e8f9a3c5b7d9e1f3a5c7"
ECR_DIGEST = "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234"


def load(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def raw(name: str) -> bytes:
    return (EVENTS / name).read_bytes()


def only(delivery: events.EventGridDelivery) -> ScanMessage | Skip:
    assert delivery.validation_code is None
    assert len(delivery.items) == 1
    return delivery.items[0]


# -- ACR ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["acr-eventgrid-image-pushed.json", "acr-cloudevents-image-pushed.json"])
def test_acr_push_both_schemas(name: str) -> None:
    msg = only(events.parse_event_grid(raw(name)))
    assert isinstance(msg, ScanMessage)
    assert msg.action is Action.PUSH
    assert (msg.registry, msg.repository, msg.tag, msg.digest) == (
        "demo.azurecr.io",
        "aci-helloworld",
        "v1",
        ACR_DIGEST,
    )
    assert msg.source == "acr"
    assert msg.event_id == "831e1650-001e-001b-66ab-eeb76e069631"
    assert msg.event_time == datetime(2018, 4, 25, 21, 39, 47, 276585, tzinfo=UTC)
    assert msg.reference == f"demo.azurecr.io/aci-helloworld@{ACR_DIGEST}"


@pytest.mark.parametrize("name", ["acr-eventgrid-image-deleted.json", "acr-cloudevents-image-deleted.json"])
def test_acr_delete_both_schemas(name: str) -> None:
    msg = only(events.parse_event_grid(raw(name)))
    assert isinstance(msg, ScanMessage)
    assert msg.action is Action.DELETE
    assert (msg.registry, msg.repository, msg.tag, msg.digest) == (
        "demo.azurecr.io",
        "aci-helloworld",
        None,
        ACR_DIGEST,
    )
    assert msg.event_id == "f06e3921-301f-42ec-b368-212f7d5354bd"


def test_single_cloudevent_not_in_an_array() -> None:
    ev = load("acr-cloudevents-image-pushed.json")[0]
    msg = only(events.parse_event_grid(json.dumps(ev)))
    assert isinstance(msg, ScanMessage) and msg.tag == "v1"


def test_validation_handshake() -> None:
    d = events.parse_event_grid(raw("eventgrid-subscription-validation.json"))
    assert d.validation_code == "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"
    assert d.validation_url and d.validation_url.startswith("https://rp-eastus2.eventgrid.azure.net:553/")
    assert d.items == []


def test_helm_chart_is_skipped() -> None:
    item = only(events.parse_event_grid(raw("acr-eventgrid-chart-pushed.json")))
    assert isinstance(item, Skip)
    assert "Helm chart" in item.reason and item.event_id == "ea3a9c28-5b17-40f6-a500-3f02b6829ca4"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"mediaType": "application/vnd.cncf.oras.artifact.manifest.v1+json"}, "not a container image manifest"),
        ({"artifactType": "application/vnd.cncf.notary.signature"}, "OCI artifact"),
        ({"tag": "sha256-" + "a" * 64 + ".sig"}, "signature"),
    ],
)
def test_non_image_artifacts_are_skipped(change: dict[str, str], why: str) -> None:
    doc = load("acr-eventgrid-image-pushed.json")
    doc[0]["data"]["target"].update(change)
    item = only(events.parse_event_grid(json.dumps(doc)))
    assert isinstance(item, Skip) and why in item.reason


def test_oci_index_push_is_an_image() -> None:
    doc = load("acr-cloudevents-image-pushed.json")
    doc[0]["data"]["target"]["mediaType"] = "application/vnd.oci.image.index.v1+json"
    assert isinstance(only(events.parse_event_grid(json.dumps(doc))), ScanMessage)


def test_other_event_types_are_skipped() -> None:
    doc = load("acr-eventgrid-image-pushed.json")
    doc[0]["eventType"] = "Microsoft.Storage.BlobCreated"
    item = only(events.parse_event_grid(json.dumps(doc)))
    assert isinstance(item, Skip) and "not an image push or delete" in item.reason


def _broken(path: list[str], value: Any) -> bytes:
    doc = load("acr-eventgrid-image-pushed.json")
    target: Any = doc[0]
    for k in path[:-1]:
        target = target[k]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["data", "request", "host"], KeyError, "data.request.host"),
        (["data", "target", "repository"], KeyError, "data.target.repository is missing"),
        (["data", "target", "repository"], "UPPER/Case", "not a repository name"),
        (["data", "target", "digest"], "sha256:xyz", "not a digest"),
        (["data", "target", "tag"], "bad tag!", "not a tag"),
        (["data", "target"], "nope", "data.target must be an object"),
        (["data"], KeyError, "data must be an object"),
        (["id"], KeyError, "id is missing"),
        (["data", "request", "host"], "evil.example/path", "not a registry host"),
    ],
)
def test_malformed_acr_event_names_the_field(path: list[str], value: Any, message: str) -> None:
    with pytest.raises(InvalidEvent) as ei:
        events.parse_event_grid(_broken(path, value))
    assert message in str(ei.value)
    assert "831e1650" in str(ei.value) or path == ["id"]


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"", "not JSON"), (b"{", "not JSON"), (b"\xff\xfe", "not UTF-8"), (b"[]", "empty array"), (b"[1]", "object")],
)
def test_unreadable_deliveries(body: bytes, message: str) -> None:
    with pytest.raises(InvalidEvent, match=message):
        events.parse_event_grid(body)


def test_delete_without_digest_is_invalid() -> None:
    doc = load("acr-eventgrid-image-deleted.json")
    del doc[0]["data"]["target"]["digest"]
    with pytest.raises(InvalidEvent, match="digest is missing"):
        events.parse_event_grid(json.dumps(doc))


def test_cloudevents_webhook_handshake_origin() -> None:
    assert events.cloudevents_validation_origin({"WebHook-Request-Origin": "eventgrid.azure.net"}) == (
        "eventgrid.azure.net"
    )
    assert events.cloudevents_validation_origin({"Content-Type": "x"}) is None


# -- GAR -------------------------------------------------------------------------------------


def test_gar_insert() -> None:
    msg = events.parse_gar_push(raw("gar-pubsub-push-insert.json"))
    assert isinstance(msg, ScanMessage)
    assert msg.action is Action.PUSH
    assert msg.registry == "us-east1-docker.pkg.dev"
    assert msg.repository == "my-project/my-repo/hello-world"
    assert (msg.tag, msg.digest, msg.source) == ("1.1", GAR_DIGEST, "gar")
    assert msg.event_id == "2070443601311540"
    assert msg.event_time == datetime(2021, 2, 26, 19, 13, 55, 749000, tzinfo=UTC)


def test_gar_delete_by_digest_and_untag() -> None:
    msg = events.parse_gar_push(raw("gar-pubsub-push-delete.json"))
    assert isinstance(msg, ScanMessage) and msg.action is Action.DELETE and msg.digest == GAR_DIGEST
    item = events.parse_gar_push(raw("gar-pubsub-push-untag.json"))
    assert isinstance(item, Skip) and "tag was removed" in item.reason


def _gar(data: Any, mid: str = "1") -> bytes:
    payload = data if isinstance(data, bytes) else json.dumps(data).encode()
    return json.dumps({"message": {"data": base64.b64encode(payload).decode(), "messageId": mid}}).encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (json.dumps({"message": {"messageId": "1"}}).encode(), "message.data is missing"),
        (json.dumps({"message": {"data": "!!!", "messageId": "1"}}).encode(), "not base64"),
        (json.dumps({"message": {"data": "e30="}}).encode(), "messageId is missing"),
        (_gar(b"not json"), "not JSON"),
        (_gar({"action": "INSERT"}), "neither digest nor tag"),
        (_gar({"action": "INSERT", "digest": "hello-world@sha256:" + "a" * 64}), "registry"),
        (_gar({"action": "INSERT", "digest": "gcr.io/p/img:1"}), "has no @digest"),
        (_gar({"action": "INSERT", "tag": "gcr.io/p/img@sha256:" + "a" * 64}), "not a tagged reference"),
        (
            _gar({"action": "INSERT", "digest": "gcr.io/p/a@sha256:" + "a" * 64, "tag": "gcr.io/p/b:1"}),
            "different repositories",
        ),
    ],
)
def test_malformed_gar_push(body: bytes, message: str) -> None:
    with pytest.raises(InvalidEvent, match=message):
        events.parse_gar_push(body)


def test_gar_unknown_action_is_skipped() -> None:
    item = events.parse_gar_push(_gar({"action": "UPDATE", "tag": "gcr.io/p/img:1"}))
    assert isinstance(item, Skip)


def test_gcr_tag_only_insert() -> None:
    msg = events.parse_gar_push(_gar({"action": "INSERT", "tag": "gcr.io/my-project/hello-world:1.1"}, "7"))
    assert isinstance(msg, ScanMessage)
    assert (msg.registry, msg.repository, msg.tag, msg.digest) == ("gcr.io", "my-project/hello-world", "1.1", None)


# -- ECR -------------------------------------------------------------------------------------


def test_ecr_push_and_delete() -> None:
    push = events.parse_ecr_event(raw("ecr-eventbridge-image-push.json"))
    assert isinstance(push, ScanMessage)
    assert push.action is Action.PUSH
    assert push.registry == "123456789012.dkr.ecr.us-west-2.amazonaws.com"
    assert (push.repository, push.tag, push.digest) == ("my-repository-name", "latest", ECR_DIGEST)
    assert (push.aws_account, push.aws_region, push.source) == ("123456789012", "us-west-2", "ecr")
    assert push.event_time == datetime(2019, 11, 16, 1, 54, 34, tzinfo=UTC)
    delete = events.parse_ecr_event(raw("ecr-eventbridge-image-delete.json"))
    assert isinstance(delete, ScanMessage) and delete.action is Action.DELETE and delete.digest == ECR_DIGEST


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"result": "FAILURE"}, "result 'FAILURE'"),
        ({"action-type": "REPLICATE"}, "not a push or delete"),
        ({"artifact-media-type": "application/vnd.cncf.helm.config.v1+json"}, "not an image"),
        ({"manifest-media-type": "application/vnd.cncf.oras.artifact.manifest.v1+json"}, "not a container image"),
    ],
)
def test_ecr_skips(change: dict[str, str], why: str) -> None:
    doc = load("ecr-eventbridge-image-push.json")
    doc["detail"].update(change)
    item = events.parse_ecr_event(json.dumps(doc))
    assert isinstance(item, Skip) and why in item.reason


def test_ecr_other_detail_type_is_skipped_and_china_regions() -> None:
    doc = load("ecr-eventbridge-image-push.json")
    other = copy.deepcopy(doc)
    other["detail-type"] = "ECR Image Scan"
    assert isinstance(events.parse_ecr_event(json.dumps(other)), Skip)
    doc["region"] = "cn-north-1"
    msg = events.parse_ecr_event(json.dumps(doc))
    assert isinstance(msg, ScanMessage) and msg.registry == "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        ("source", "aws.s3", "is not aws.ecr"),
        ("account", "12345", "not an AWS account id"),
        ("region", "../../x", "not an AWS region"),
        ("detail", None, "detail must be an object"),
    ],
)
def test_malformed_ecr_event(where: str, value: Any, message: str) -> None:
    doc = load("ecr-eventbridge-image-push.json")
    doc[where] = value
    with pytest.raises(InvalidEvent, match=message):
        events.parse_ecr_event(json.dumps(doc))
