"""Azure Functions blueprints (Python v2 model). Registered in the root function_app.py."""
