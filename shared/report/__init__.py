"""Output formats for scan results: table (rich), JSON, CycloneDX."""
