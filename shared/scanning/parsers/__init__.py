"""Pure parsers: bytes in, models out. No I/O, no knowledge of layers or images."""

from __future__ import annotations


class ParseError(ValueError):
    """A file is not in the format its parser expects. The message says where and why."""
