"""Registry events -> scan messages: pure parsers, no I/O, one per event source.

- **ACR through Event Grid**, in the Event Grid schema (``eventType``, ``eventTime``,
  ``topic``, ``dataVersion``) and in the CloudEvents 1.0 schema (``type``, ``time``,
  ``source``, ``specversion``): ``Microsoft.ContainerRegistry.ImagePushed`` and
  ``ImageDeleted``. The registry is ``data.request.host`` (the login server). Helm
  chart events, OCI artifacts that are not images (by ``target.mediaType``, or an
  ``artifactType``), and cosign signature/attestation tags are acknowledged as
  :class:`~shared.service.messages.Skip`. A delivery may also be the subscription
  validation handshake (:class:`EventGridDelivery.validation_code`).
- **Google Artifact Registry / Container Registry Pub/Sub push**: the push body's
  ``message.data`` is base64 JSON ``{"action": "INSERT"|"DELETE", "digest": ..., "tag": ...}``
  where digest and tag are full references (``us-east1-docker.pkg.dev/p/r/img@sha256:...``).
  A DELETE naming only a tag removes a tag, not the image: skipped.
- **ECR through EventBridge**: ``detail-type`` "ECR Image Action", ``source`` aws.ecr,
  ``detail.action-type`` PUSH or DELETE with ``detail.result`` SUCCESS; anything
  else is skipped. The registry is ``ACCOUNT.dkr.ecr.REGION.amazonaws.com``.

Malformed input raises :class:`~shared.service.errors.InvalidEvent` naming the
event and the field that is wrong. Whether the registry is allowed is not
decided here (the worker's allowlist does it, and the triggers may check early).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.errors import UsageError
from shared.scanning import reference
from shared.service.errors import InvalidEvent
from shared.service.messages import Action, ScanMessage, Skip

ACR_PUSHED = "Microsoft.ContainerRegistry.ImagePushed"
ACR_DELETED = "Microsoft.ContainerRegistry.ImageDeleted"
ACR_CHART_EVENTS = frozenset({"Microsoft.ContainerRegistry.ChartPushed", "Microsoft.ContainerRegistry.ChartDeleted"})
EVENTGRID_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"

#: Manifest media types that are container images (or indexes of images).
IMAGE_MANIFEST_TYPES = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    }
)
#: Config / artifact types that mean "a container image" where an event names one.
IMAGE_ARTIFACT_TYPES = frozenset(
    {
        "application/vnd.docker.container.image.v1+json",
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    }
)
_COSIGN_TAG = re.compile(r"^sha256-[0-9a-f]{64}(?:\.(?:sig|att|sbom))?$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
MAX_BODY_BYTES = 1024 * 1024


# -- helpers ---------------------------------------------------------------------------------


def _load(body: bytes | str | Any, subject: str) -> Any:
    if isinstance(body, bytes | bytearray):
        if len(body) > MAX_BODY_BYTES:
            raise InvalidEvent(subject, f"body is {len(body)} bytes, over the {MAX_BODY_BYTES}-byte limit")
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidEvent(subject, "body is not UTF-8") from None
    if isinstance(body, str):
        try:
            return json.loads(body)
        except ValueError as exc:
            raise InvalidEvent(subject, f"body is not JSON ({exc})") from None
    return body


def _obj(value: Any, subject: str, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidEvent(subject, f"{where} must be an object, got {type(value).__name__}")
    return value


def _str(m: Mapping[str, Any], key: str, subject: str, where: str, *, required: bool = True) -> str | None:
    value = m.get(key)
    if value is None or value == "":
        if required:
            raise InvalidEvent(subject, f"{where}.{key} is missing")
        return None
    if not isinstance(value, str):
        raise InvalidEvent(subject, f"{where}.{key} must be a string, got {type(value).__name__}")
    return value


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _digest(value: str | None, subject: str, where: str) -> str | None:
    if value is None:
        return None
    if not _DIGEST.match(value):
        raise InvalidEvent(subject, f"{where} {value[:100]!r} is not a digest (algorithm:hex)")
    return value


def _repository(value: str, subject: str, where: str) -> str:
    try:
        ref = reference.parse(f"registry.invalid/{value}:latest")
    except UsageError as exc:
        raise InvalidEvent(subject, f"{where} {value[:200]!r} is not a repository name ({exc.detail})") from None
    assert isinstance(ref, reference.RegistryRef)
    return ref.repository


def _registry_host(value: str, subject: str, where: str) -> str:
    host = value.strip().lower()
    if not host or "/" in host or "@" in host or " " in host:
        raise InvalidEvent(subject, f"{where} {value[:100]!r} is not a registry host")
    return host


def _tag(value: str | None, subject: str, where: str) -> str | None:
    if value is None:
        return None
    if not re.match(r"^[\w][\w.-]{0,127}$", value):
        raise InvalidEvent(subject, f"{where} {value[:200]!r} is not a tag")
    return value


# -- ACR via Event Grid ------------------------------------------------------------------------


@dataclass
class EventGridDelivery:
    """One Event Grid delivery: a validation handshake, or events (each a message or a skip)."""

    validation_code: str | None = None
    validation_url: str | None = None
    items: list[ScanMessage | Skip] = field(default_factory=list)


def parse_event_grid(body: bytes | str | Any) -> EventGridDelivery:
    """An Event Grid webhook delivery: an array of events (Event Grid schema) or CloudEvents (one or a batch)."""
    subject = "Event Grid delivery"
    doc = _load(body, subject)
    events: Sequence[Any] = doc if isinstance(doc, list) else [doc]
    if not events:
        raise InvalidEvent(subject, "an empty array of events")
    out = EventGridDelivery()
    for i, ev in enumerate(events):
        ev = _obj(ev, subject, f"event[{i}]")
        etype = ev.get("eventType") or ev.get("type")
        if etype == EVENTGRID_VALIDATION:
            data = _obj(ev.get("data"), subject, f"event[{i}].data")
            out.validation_code = _str(data, "validationCode", subject, f"event[{i}].data")
            out.validation_url = _str(data, "validationUrl", subject, f"event[{i}].data", required=False)
            continue
        out.items.append(parse_acr_event(ev))
    return out


def parse_acr_event(event: Mapping[str, Any]) -> ScanMessage | Skip:
    """One ACR event in either schema."""
    cloud = "specversion" in event
    etype = event.get("type") if cloud else event.get("eventType")
    eid = event.get("id")
    subject = f"Event Grid event {eid if isinstance(eid, str) else '?'}"
    if not isinstance(eid, str) or not eid:
        raise InvalidEvent(subject, "id is missing")
    if not isinstance(etype, str) or not etype:
        raise InvalidEvent(subject, ("type" if cloud else "eventType") + " is missing")
    if cloud and event.get("specversion") != "1.0":
        raise InvalidEvent(subject, f"specversion {event.get('specversion')!r} is not 1.0")
    if etype in ACR_CHART_EVENTS:
        return Skip(reason=f"{etype}: a Helm chart, not an image", event_id=eid)
    full = etype if etype.startswith("Microsoft.") else f"Microsoft.ContainerRegistry.{etype}"
    if full not in (ACR_PUSHED, ACR_DELETED):
        return Skip(reason=f"{etype}: not an image push or delete event", event_id=eid)
    data = _obj(event.get("data"), subject, "data")
    target = _obj(data.get("target"), subject, "data.target")
    request = data.get("request")
    host = None
    if isinstance(request, Mapping):
        host = _str(request, "host", subject, "data.request", required=False)
    if host is None:
        raise InvalidEvent(subject, "data.request.host (the registry's login server) is missing")
    registry = _registry_host(host, subject, "data.request.host")
    repo_text = _str(target, "repository", subject, "data.target")
    assert repo_text is not None
    repository = _repository(repo_text, subject, "data.target.repository")
    tag = _tag(_str(target, "tag", subject, "data.target", required=False), subject, "data.target.tag")
    digest = _digest(_str(target, "digest", subject, "data.target", required=False), subject, "data.target.digest")
    media_type = _str(target, "mediaType", subject, "data.target", required=False)
    artifact_type = _str(target, "artifactType", subject, "data.target", required=False)
    if media_type is not None and media_type.split(";", 1)[0].strip().lower() not in IMAGE_MANIFEST_TYPES:
        return Skip(reason=f"{repository}: {media_type} is not a container image manifest", event_id=eid)
    if artifact_type is not None and artifact_type not in IMAGE_ARTIFACT_TYPES:
        return Skip(reason=f"{repository}: an OCI artifact of type {artifact_type}, not an image", event_id=eid)
    if tag is not None and _COSIGN_TAG.match(tag):
        return Skip(reason=f"{repository}:{tag}: a signature or attestation tag, not an image", event_id=eid)
    if full == ACR_PUSHED and tag is None and digest is None:
        raise InvalidEvent(subject, "data.target has neither tag nor digest")
    if full == ACR_DELETED and digest is None:
        raise InvalidEvent(subject, "data.target.digest is missing (an image deletion names its digest)")
    when = _time(data.get("timestamp")) or _time(event.get("time") if cloud else event.get("eventTime"))
    return ScanMessage(
        action=Action.PUSH if full == ACR_PUSHED else Action.DELETE,
        registry=registry,
        repository=repository,
        tag=tag,
        digest=digest,
        source="acr",
        event_id=eid,
        event_time=when,
    )


def cloudevents_validation_origin(headers: Mapping[str, str]) -> str | None:
    """The CloudEvents webhook abuse-protection handshake (an OPTIONS request): the origin to allow, if asked."""
    for k, v in headers.items():
        if k.lower() == "webhook-request-origin" and v.strip():
            return v.strip()
    return None


# -- GAR / GCR via Pub/Sub push --------------------------------------------------------------------


def parse_gar_push(body: bytes | str | Any) -> ScanMessage | Skip:
    """A Pub/Sub push request body carrying an Artifact Registry (or Container Registry) notification."""
    subject = "Pub/Sub push"
    doc = _obj(_load(body, subject), subject, "body")
    msg = _obj(doc.get("message"), subject, "message")
    mid = _str(msg, "messageId", subject, "message", required=False) or _str(
        msg, "message_id", subject, "message", required=False
    )
    if mid is None:
        raise InvalidEvent(subject, "message.messageId is missing")
    subject = f"Pub/Sub message {mid}"
    raw = _str(msg, "data", subject, "message")
    assert raw is not None
    try:
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidEvent(subject, "message.data is not base64") from None
    data = _obj(_load(decoded, subject), subject, "message.data")
    action = _str(data, "action", subject, "message.data")
    digest_ref = _str(data, "digest", subject, "message.data", required=False)
    tag_ref = _str(data, "tag", subject, "message.data", required=False)
    if action not in ("INSERT", "DELETE"):
        return Skip(reason=f"action {action!r}: not an image insert or delete", event_id=mid)
    if digest_ref is None and tag_ref is None:
        raise InvalidEvent(subject, "message.data has neither digest nor tag")
    registry = repository = None
    digest = tag = None
    if digest_ref is not None:
        ref = _parse_ref(digest_ref, subject, "message.data.digest")
        if ref.digest is None:
            raise InvalidEvent(subject, f"message.data.digest {digest_ref[:200]!r} has no @digest")
        registry, repository, digest = ref.registry, ref.repository, ref.digest
    if tag_ref is not None:
        ref = _parse_ref(tag_ref, subject, "message.data.tag")
        if ref.digest is not None or ref.tag is None or not tag_ref.endswith(f":{ref.tag}"):
            raise InvalidEvent(subject, f"message.data.tag {tag_ref[:200]!r} is not a tagged reference")
        if registry is not None and (ref.registry, ref.repository) != (registry, repository):
            raise InvalidEvent(subject, "message.data.digest and message.data.tag name different repositories")
        registry, repository, tag = ref.registry, ref.repository, ref.tag
    assert registry is not None and repository is not None
    if action == "DELETE" and digest is None:
        return Skip(reason=f"{registry}/{repository}:{tag}: a tag was removed, the image stays", event_id=mid)
    if tag is not None and _COSIGN_TAG.match(tag):
        return Skip(reason=f"{registry}/{repository}:{tag}: a signature or attestation tag", event_id=mid)
    return ScanMessage(
        action=Action.PUSH if action == "INSERT" else Action.DELETE,
        registry=registry,
        repository=repository,
        tag=tag,
        digest=digest,
        source="gar",
        event_id=mid,
        event_time=_time(msg.get("publishTime") or msg.get("publish_time")),
    )


def _parse_ref(text: str, subject: str, where: str) -> reference.RegistryRef:
    try:
        ref = reference.parse(text)
    except UsageError as exc:
        raise InvalidEvent(subject, f"{where} {text[:200]!r} is not an image reference ({exc.detail})") from None
    if not isinstance(ref, reference.RegistryRef) or not text.startswith(ref.registry + "/"):
        raise InvalidEvent(subject, f"{where} {text[:200]!r} does not start with a registry host")
    return ref


# -- ECR via EventBridge ---------------------------------------------------------------------------


def ecr_registry(account: str, region: str) -> str:
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{suffix}"


def parse_ecr_event(body: bytes | str | Any) -> ScanMessage | Skip:
    """An EventBridge event from ECR (``ECR Image Action``)."""
    subject = "EventBridge event"
    ev = _obj(_load(body, subject), subject, "event")
    eid = _str(ev, "id", subject, "event")
    assert eid is not None
    subject = f"EventBridge event {eid}"
    if ev.get("source") != "aws.ecr":
        raise InvalidEvent(subject, f"source {ev.get('source')!r} is not aws.ecr")
    if ev.get("detail-type") != "ECR Image Action":
        return Skip(reason=f"{ev.get('detail-type')!r}: not an ECR image action", event_id=eid)
    detail = _obj(ev.get("detail"), subject, "detail")
    result = detail.get("result")
    action = detail.get("action-type")
    if result != "SUCCESS":
        return Skip(reason=f"ECR {action} with result {result!r}: nothing to scan", event_id=eid)
    if action not in ("PUSH", "DELETE"):
        return Skip(reason=f"ECR action {action!r}: not a push or delete", event_id=eid)
    account = _str(ev, "account", subject, "event")
    region = _str(ev, "region", subject, "event")
    assert account is not None and region is not None
    if not re.fullmatch(r"\d{12}", account):
        raise InvalidEvent(subject, f"account {account[:40]!r} is not an AWS account id")
    if not re.fullmatch(r"[a-z]{2}(?:-[a-z]+)+-\d", region):
        raise InvalidEvent(subject, f"region {region[:40]!r} is not an AWS region")
    repo_text = _str(detail, "repository-name", subject, "detail")
    assert repo_text is not None
    repository = _repository(repo_text, subject, "detail.repository-name")
    digest = _digest(_str(detail, "image-digest", subject, "detail", required=False), subject, "detail.image-digest")
    tag = _tag(_str(detail, "image-tag", subject, "detail", required=False), subject, "detail.image-tag")
    artifact = _str(detail, "artifact-media-type", subject, "detail", required=False)
    manifest = _str(detail, "manifest-media-type", subject, "detail", required=False)
    if artifact is not None and artifact not in IMAGE_ARTIFACT_TYPES:
        return Skip(reason=f"{repository}: an artifact of type {artifact}, not an image", event_id=eid)
    if manifest is not None and manifest not in IMAGE_MANIFEST_TYPES:
        return Skip(reason=f"{repository}: {manifest} is not a container image manifest", event_id=eid)
    if tag is not None and _COSIGN_TAG.match(tag):
        return Skip(reason=f"{repository}:{tag}: a signature or attestation tag", event_id=eid)
    if digest is None and (action == "DELETE" or tag is None):
        raise InvalidEvent(subject, "detail.image-digest is missing")
    return ScanMessage(
        action=Action.PUSH if action == "PUSH" else Action.DELETE,
        registry=ecr_registry(account, region),
        repository=repository,
        tag=tag,
        digest=digest,
        source="ecr",
        event_id=eid,
        event_time=_time(ev.get("time")),
        aws_account=account,
        aws_region=region,
    )
