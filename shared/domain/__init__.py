"""Pydantic models shared by every layer of hullwatch."""

from shared.domain.models import (
    SCHEMA_VERSION,
    ImageInfo,
    LayerInfo,
    OSInfo,
    Package,
    ScanReport,
    ScanResult,
    ScanWarning,
    ToolInfo,
)

__all__ = [
    "SCHEMA_VERSION",
    "ImageInfo",
    "LayerInfo",
    "OSInfo",
    "Package",
    "ScanReport",
    "ScanResult",
    "ScanWarning",
    "ToolInfo",
]
