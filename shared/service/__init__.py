"""The event-driven backend's services: the same core in Azure Functions, AWS Lambda and `hullwatch serve`."""
