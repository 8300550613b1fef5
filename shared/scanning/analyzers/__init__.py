"""Analyzers: one module per file format, registered by name and wanted paths."""
