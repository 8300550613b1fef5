"""infra/bicep (the Azure side): what the design depends on, read from the template text.

No Bicep compiler can be installed here (the Bicep CLI is a .NET binary that
its npm/PyPI wrappers download at run time), so syntax is checked by checkov's
Bicep parser (``test_checkov.py`` fails on any parsing error) and the structure
by these tests: every resource the backend needs, partition keys that match the
store models, identity-based settings with no secret, secure defaults, and
role assignments limited to data-plane roles on the resources used.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from shared.stores.models import AlertRecord, FindingRecord, ImageRecord, LayerCacheEntry
from tests.conftest import REPO

BICEP = REPO / "infra" / "bicep"

ROLE_IDS = {
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "EventGrid Data Sender": "d5a91429-5739-47e2-a06b-3470a27159e7",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}
BROAD_ROLE_IDS = {
    "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "User Access Administrator": "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
    "AcrPush": "8311e382-0749-4cb8-b61a-304f252e45ec",
    "Storage Account Contributor": "17d1049b-9a84-46fb-8f53-869881c3d3ab",
}


def _strip_comments(text: str) -> str:
    """Bicep without // and /* */ comments (string contents kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == "'":
            j = i + 1
            while j < n and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            i = text.find("\n", i) if "\n" in text[i:] else n
        elif text.startswith("/*", i):
            i = text.index("*/", i) + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


@pytest.fixture(scope="module")
def main() -> str:
    return _strip_comments((BICEP / "main.bicep").read_text())


@pytest.fixture(scope="module")
def registry() -> str:
    return _strip_comments((BICEP / "modules" / "registry.bicep").read_text())


def _resource(text: str, symbol: str) -> str:
    """The type and body of `resource SYMBOL 'TYPE' = [for ...:] {...}` (brace-matched, loop header included)."""
    m = re.search(rf"^resource {symbol} '([^']+)'", text, re.M)
    assert m, f"no resource {symbol}"
    start = text.index("{", m.end())
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return m.group(1) + "\n" + text[m.end() : i + 1]
    raise AssertionError(f"unbalanced braces in {symbol}")


@pytest.mark.parametrize("path", sorted(BICEP.rglob("*.bicep")), ids=lambda p: p.name)
def test_brackets_balance(path: Path) -> None:
    text = _strip_comments(path.read_text())
    text = re.sub(r"'(?:[^'\\]|\\.)*'", "''", text)
    stack: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for n, c in enumerate(text):
        if c in "([{":
            stack.append(c)
        elif c in pairs:
            assert stack and stack.pop() == pairs[c], f"{path.name}: unbalanced {c!r} at offset {n}"
    assert not stack, f"{path.name}: unclosed {stack}"


def test_modules_exist(main: str) -> None:
    for module in re.findall(r"^module \w+ '([^']+)'", main, re.M):
        assert (BICEP / module).is_file(), module


def test_function_app_flex_python311_with_identity(main: str) -> None:
    plan = _resource(main, "plan")
    assert "name: 'FC1'" in plan and "tier: 'FlexConsumption'" in plan
    app = _resource(main, "functionApp")
    assert app.startswith("Microsoft.Web/sites@")
    assert "kind: 'functionapp,linux'" in app
    assert re.search(r"identity: \{\s*type: 'SystemAssigned'\s*\}", app)
    assert re.search(r"runtime: \{\s*name: 'python'\s*version: '3.11'\s*\}", app)
    assert "httpsOnly: true" in app
    assert "ftpsState: 'Disabled'" in app
    assert "minTlsVersion: '1.2'" in app and "scmMinTlsVersion: '1.2'" in app
    assert "type: 'SystemAssignedIdentity'" in app  # deployment package read by identity
    for policy in ("ftpPublishing", "scmPublishing"):
        assert "allow: false" in _resource(main, policy)


def test_app_settings_are_identity_based_and_complete(main: str) -> None:
    app = _resource(main, "functionApp")
    names = set(re.findall(r"name: '([A-Za-z0-9_]+)'\s*value:", app))
    assert {
        "AzureWebJobsStorage__accountName",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
        "HULLWATCH_REGISTRY_ALLOWLIST",
        "HULLWATCH_COSMOS_ENDPOINT",
        "HULLWATCH_COSMOS_DATABASE",
        "HULLWATCH_SCAN_QUEUE",
        "HULLWATCH_BLOB_ENDPOINT",
        "HULLWATCH_INVENTORY_CONTAINER",
        "HULLWATCH_VULNDB_CONTAINER",
        "HULLWATCH_EVENTGRID_TOPIC_ENDPOINT",
    } <= names, sorted(names)
    assert "AzureWebJobsStorage" not in names, "host storage must use the identity (AzureWebJobsStorage__accountName)"
    # Flex Consumption sets the runtime in functionAppConfig, never through these settings.
    assert not names & {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE"}


@pytest.mark.parametrize("path", sorted(BICEP.rglob("*.bicep")), ids=lambda p: p.name)
def test_no_secrets(path: Path) -> None:
    text = _strip_comments(path.read_text())
    needles = ("listKeys(", "listConnectionStrings(", "listCredentials(", "AccountKey=", "SharedAccessKey", "@secure()")
    for needle in needles:
        assert needle not in text, f"{path.name}: {needle}"


def test_storage_defaults(main: str) -> None:
    storage = _resource(main, "storage")
    for setting in (
        "supportsHttpsTrafficOnly: true",
        "minimumTlsVersion: 'TLS1_2'",
        "allowBlobPublicAccess: false",
        "allowSharedKeyAccess: false",
        "defaultToOAuthAuthentication: true",
    ):
        assert setting in storage, setting
    containers = {_resource(main, s).split("name: ")[1].split("\n")[0] for s in
                  ("inventoryContainer", "vulndbContainer", "deploymentContainer", "deadLetterContainer")}  # fmt: skip
    assert {"inventoryContainerName", "vulndbContainerName"} <= containers
    assert "var inventoryContainerName = 'inventories'" in main
    assert "var vulndbContainerName = 'vulndb'" in main
    assert "var scanQueueName = 'scan-requests'" in main
    assert "name: scanQueueName" in _resource(main, "scanQueue")
    assert "-poison'" not in main, "the poison queue is the Functions host's to create"
    assert main.count("publicAccess: 'None'") == 4


def test_cosmos_serverless_keyless_with_model_partition_keys(main: str) -> None:
    cosmos = _resource(main, "cosmos")
    assert "name: 'EnableServerless'" in cosmos
    assert "disableLocalAuth: true" in cosmos
    assert "minimalTlsVersion: 'Tls12'" in cosmos
    assert "var cosmosContainers = loadJsonContent('cosmos-containers.json')" in main
    assert "indexingPolicy: c.indexingPolicy" in _resource(main, "cosmosContainer")
    from shared.stores.cosmos import INDEXING_POLICIES, PARTITION_KEYS

    declared = json.loads((REPO / "infra" / "bicep" / "cosmos-containers.json").read_text())
    # the deployed containers are exactly what the adapter queries (partition keys, composite indexes)
    assert declared == [
        {"name": n, "partitionKey": PARTITION_KEYS[n], "indexingPolicy": INDEXING_POLICIES[n]} for n in PARTITION_KEYS
    ]
    containers = {d["name"]: d["partitionKey"] for d in declared}
    models = {"images": ImageRecord, "findings": FindingRecord, "alerts": AlertRecord, "layercache": LayerCacheEntry}
    for name, model in models.items():
        field = containers[name].lstrip("/")
        assert field in model.model_fields, f"{name}: partition key {field} is not a field of {model.__name__}"
    assignment = _resource(main, "cosmosDataContributor")
    assert assignment.startswith("Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@")
    assert "var cosmosDataContributorRoleId = '00000000-0000-0000-0000-000000000002'" in main
    assert "scope: '${cosmos.id}/dbs/${databaseName}'" in assignment  # the database, not the account


def test_alerts_topic_cloudevents_keyless(main: str) -> None:
    topic = _resource(main, "alertsTopic")
    assert topic.startswith("Microsoft.EventGrid/topics@")
    assert "inputSchema: 'CloudEventSchemaV1_0'" in topic
    assert "disableLocalAuth: true" in topic
    sender = _resource(main, "topicSender")
    assert "scope: alertsTopic" in sender and "roles.eventGridDataSender" in sender


def test_registry_events_reach_the_function(registry: str) -> None:
    topic = _resource(registry, "systemTopic")
    assert "topicType: 'Microsoft.ContainerRegistry.Registries'" in topic and "source: registry.id" in topic
    sub = _resource(registry, "subscription")
    assert "endpointType: 'AzureFunction'" in sub
    assert "resourceId: '${functionAppId}/functions/${functionName}'" in sub
    types = re.search(r"includedEventTypes: \[([^\]]*)\]", sub)
    assert types and re.findall(r"'([\w.]+)'", types.group(1)) == [
        "Microsoft.ContainerRegistry.ImagePushed",
        "Microsoft.ContainerRegistry.ImageDeleted",
    ]
    assert "deadLetterWithResourceIdentity" in sub
    pull = _resource(registry, "acrPull")
    assert "scope: registry" in pull and "acrPullRoleId" in pull
    assert f"var acrPullRoleId = '{ROLE_IDS['AcrPull']}'" in registry


def test_role_assignments_are_minimal(main: str, registry: str) -> None:
    both = main + registry
    for name, role_id in BROAD_ROLE_IDS.items():
        assert role_id not in both, f"{name} is broader than the backend needs"
    for name, role_id in ROLE_IDS.items():
        assert role_id in both, f"missing {name}"
    blocks = re.findall(r"^resource (\w+) 'Microsoft.Authorization/roleAssignments@", both, re.M)
    assert len(blocks) == 7, blocks
    for symbol in blocks:
        body = _resource(main if symbol in main else registry, symbol)
        assert "principalType: 'ServicePrincipal'" in body, symbol
        assert re.search(r"^\s*scope: \w+$", body, re.M), f"{symbol}: assign on a resource, never the resource group"
    # External writers (the AWS side's service principal) get the two data roles and nothing else.
    external = [s for s in blocks if "externalWriterPrincipalIds" in _resource(main if s in main else registry, s)]
    assert external == ["externalTopicSender"], external
    assert "scope: alertsTopic" in _resource(main, "externalTopicSender")
    assert "/dbs/${databaseName}'" in _resource(main, "externalCosmosDataContributor")
    # The dead-letter writer is scoped to its container, not the account.
    assert "scope: deadLetterContainer" in _resource(main, "deadLetterWriter")


def test_monitoring_is_keyless(main: str) -> None:
    insights = _resource(main, "appInsights")
    assert "DisableLocalAuth: true" in insights and "WorkspaceResourceId: logAnalytics.id" in insights
    assert "value: 'Authorization=AAD'" in _resource(main, "functionApp")


def test_pubsub_push_authentication_is_set_only_when_configured(main: str) -> None:
    """GAR/GCR pushes: the OIDC audience (and service account) reach the app only when given."""
    assert "param pubsubAudience string = ''" in main and "param pubsubServiceAccount string = ''" in main
    for setting, param in (("HULLWATCH_PUBSUB_AUDIENCE", "pubsubAudience"),
                           ("HULLWATCH_PUBSUB_SERVICE_ACCOUNT", "pubsubServiceAccount")):  # fmt: skip
        assert re.search(rf"empty\({param}\) \? \[\] : \[\s*\{{\s*name: '{setting}'\s*value: {param}\s*\}}", main)
    assert re.search(r"appSettings: concat\(\[.*\], pubsubSettings\)", _resource(main, "functionApp"), re.S)
