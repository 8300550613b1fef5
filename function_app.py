"""Azure Functions entry point: composition only. Each trigger domain is a blueprint in functions/."""

import azure.functions as func

from functions.health import bp as health

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(health)
