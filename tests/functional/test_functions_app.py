"""The Azure Functions app, through real azure.functions objects."""

from __future__ import annotations

import json

import azure.functions as func

import function_app
from shared import __version__

# FunctionApp.get_functions() may be called once per app: build the registry once.
FUNCTIONS = {f.get_function_name(): f for f in function_app.app.get_functions()}


def test_registered_functions_and_bindings() -> None:
    assert sorted(FUNCTIONS) == ["health"]
    bindings = json.loads(FUNCTIONS["health"].get_function_json())["bindings"]
    trigger = next(b for b in bindings if b["type"] == "httpTrigger")
    assert (trigger["route"], trigger["methods"], trigger["authLevel"]) == ("health", ["GET"], "ANONYMOUS")


def test_health_answers_with_version_and_analyzers() -> None:
    fn = FUNCTIONS["health"]
    req = func.HttpRequest(method="GET", url="http://localhost/api/health", body=b"")
    resp = fn.get_user_function()(req)
    assert resp.status_code == 200
    body = json.loads(resp.get_body())
    assert body["version"] == __version__
    assert {"dpkg", "apk", "os-release"} <= set(body["analyzers"])
