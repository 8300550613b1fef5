"""GET /api/health: liveness, with the version and enabled analyzers (what a scan would use)."""

from __future__ import annotations

import json

import azure.functions as func

from shared import __version__
from shared.scanning.analyzers.all import enabled_analyzers

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    body = {"status": "ok", "version": __version__, "analyzers": {a.name: a.version for a in enabled_analyzers()}}
    return func.HttpResponse(json.dumps(body), mimetype="application/json", status_code=200)
