"""Stanza files in the deb822 style (dpkg status) and apk's one-letter-key style."""

from __future__ import annotations

from collections.abc import Iterator


def deb822_stanzas(text: str) -> Iterator[dict[str, str]]:
    """Yield each blank-line separated stanza as {field: value}; continuation lines are joined."""
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, key = {}, ""
            continue
        if line[0] in " \t":
            if key:
                fields[key] += "\n" + line.strip()
            continue
        k, sep, v = line.partition(":")
        if not sep:
            continue
        key = k.strip()
        fields[key] = v.strip()
    if fields:
        yield fields
