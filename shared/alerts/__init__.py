"""Alert publishers for the cloud: where :mod:`shared.service.alerts` delivers its CloudEvents (Event Grid)."""
