"""Azure Functions entry point: composition only. Each trigger domain is a blueprint in functions/."""

import azure.functions as func

from functions.health import bp as health
from functions.registry_events import bp as registry_events
from functions.timers import bp as timers
from functions.worker import bp as worker

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(health)
app.register_functions(registry_events)
app.register_functions(worker)
app.register_functions(timers)
