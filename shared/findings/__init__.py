"""Findings beyond matching: exemptions, VEX, and (later) fingerprints and lifecycle."""
