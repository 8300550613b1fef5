"""The Azure Functions app, through real azure.functions objects: every trigger and its binding settings."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func

import function_app
from shared import __version__

# FunctionApp.get_functions() may be called once per app: build the registry once (other modules import it).
FUNCTIONS = {f.get_function_name(): f for f in function_app.app.get_functions()}

QUEUE = {"type": "queue", "direction": "OUT", "connection": "AzureWebJobsStorage"}

#: Each function's bindings as the host reads them from function.json, by binding name.
EXPECTED: dict[str, dict[str, dict[str, Any]]] = {
    "health": {
        "req": {
            "type": "httpTrigger",
            "direction": "IN",
            "route": "health",
            "methods": ["GET"],
            "authLevel": "ANONYMOUS",
        },
        "$return": {"type": "http", "direction": "OUT"},
    },
    "acr_events": {
        "event": {"type": "eventGridTrigger", "direction": "IN"},
        "scan": {**QUEUE, "queueName": "scan-requests"},
    },
    "gar_push": {
        "req": {
            "type": "httpTrigger",
            "direction": "IN",
            "route": "registry/gar",
            "methods": ["POST"],
            "authLevel": "FUNCTION",
        },
        "$return": {"type": "http", "direction": "OUT"},
        "scan": {**QUEUE, "queueName": "scan-requests"},
    },
    "scan_worker": {
        "msg": {
            "type": "queueTrigger",
            "direction": "IN",
            "queueName": "scan-requests",
            "connection": "AzureWebJobsStorage",
        },
        "poison": {**QUEUE, "queueName": "scan-requests-poison"},
    },
    "daily_rescan": {
        "timer": {
            "type": "timerTrigger",
            "direction": "IN",
            "schedule": "0 0 2 * * *",
            "runOnStartup": False,
            "useMonitor": True,
        },
        "scan": {**QUEUE, "queueName": "scan-requests"},
    },
    "vulndb_refresh": {
        "timer": {
            "type": "timerTrigger",
            "direction": "IN",
            "schedule": "0 15 * * * *",
            "runOnStartup": False,
            "useMonitor": True,
        },
        "scan": {**QUEUE, "queueName": "scan-requests"},
    },
    "alerts_outbox": {
        "timer": {
            "type": "timerTrigger",
            "direction": "IN",
            "schedule": "0 */5 * * * *",
            "runOnStartup": False,
            "useMonitor": True,
        },
    },
}


def bindings(name: str) -> dict[str, dict[str, Any]]:
    doc = json.loads(FUNCTIONS[name].get_function_json())
    return {b["name"]: {k: v for k, v in b.items() if k != "name"} for b in doc["bindings"]}


def test_registered_functions() -> None:
    assert sorted(FUNCTIONS) == sorted(EXPECTED)


def test_every_trigger_and_its_binding_settings() -> None:
    for name, expected in EXPECTED.items():
        assert bindings(name) == expected, name


def test_health_answers_with_version_and_analyzers() -> None:
    fn = FUNCTIONS["health"]
    req = func.HttpRequest(method="GET", url="http://localhost/api/health", body=b"")
    resp = fn.get_user_function()(req)
    assert resp.status_code == 200
    body = json.loads(resp.get_body())
    assert body["version"] == __version__
    assert {"dpkg", "apk", "os-release"} <= set(body["analyzers"])
