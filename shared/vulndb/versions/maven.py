"""Maven versions, ordered as Maven 3.9's ``ComparableVersion`` orders them.

Parsing (case-insensitive) follows ``ComparableVersion.parseVersion``:

- ``.`` separates items; ``-`` separates items and opens a sub-list that holds
  the rest of the version; so does a change between digits and letters
  (``1.0alpha1`` reads as ``[1, 0, [alpha, [1]]]``) - except that letters
  followed by digits at the start of a list stay in it;
- items are integers, or qualifiers: ``alpha < beta < milestone < rc = cr <
  snapshot < "" = ga = final = release < sp``, then any other word, in lexical
  order; ``a``, ``b``, ``m`` directly followed by a digit mean alpha, beta,
  milestone;
- a trailing qualifier after a ``.`` opens a sub-list too (MNG-7644:
  ``1.0.0.RC1 == 1.0.0-RC1``);
- each list then drops its trailing "null" items (0, the release qualifier, an
  empty list), looking through a trailing sub-list (``1.0.0 == 1``,
  ``1.0-ga == 1``, ``1.0.0-alpha == 1-alpha``).

Digits are ASCII digits (Maven 3.9 also takes other Unicode decimal digits for
digits, Maven 4 no longer does; no published version has them).

Comparison walks both lists: integers by value; an integer beats a list, which
beats a qualifier; qualifiers by the order above; lists recursively; and where
one list has ended, the other's item is compared with "null" (an integer above
0 is newer, ``alpha``..``snapshot`` older, ``sp`` and unknown words newer, a
list by its own first non-null item). So ``1-alpha < 1 < 1-1 < 1.0.1``,
``1 < 1-sp < 1-xyz < 1-1``, ``2.0-1 < 2.0.1``.

That comparison is not quite a total order: Maven itself finds cycles such as
``1-alpha < 1 < 1.sp.1 < 1-alpha`` and ``2.0.beta.1 < 2 < 2.0-1 < 2.0.beta.1``
(a qualifier or a 0 in the middle of a list compared with a sub-list on the
other side). The key here is a total order that agrees with Maven wherever
Maven's own order is consistent: against maven-artifact 3.9 it agrees on all of
``ComparableVersionTest`` and on realistic versions, and on random ones every
disagreement found was such a cycle, where it keeps the two comparisons with the
shorter version and flips the third.

How: the nested lists are flattened into one token stream (a list becomes a
"sub-list" token followed by its items, since a sub-list is always the last item
of its parent), which compares token by token exactly like the nested lists.
What a plain tuple cannot express is the end of a stream, which skips "null"
tokens (0, release qualifiers, sub-list starts) and is decided by the next
non-null one. So every null token also records whether the first non-null token
after it is older or newer than "nothing", and the end of the stream sits
between those two groups.

Maven 4 changed this ordering again (MNG-7559, MNG-7714: ``1.0-1 != 1-1``,
qualifiers fused with their number); 3.9 is the Maven that builds and resolves
nearly everything today, and the one whose ``maven-artifact`` is checked here.
"""

from __future__ import annotations

from shared.vulndb.versions._common import Items, cached
from shared.vulndb.versions.errors import InvalidVersion

SCHEME = "maven"

_QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
_SHORT = {"a": "alpha", "b": "beta", "m": "milestone"}
_RELEASE = str(_QUALIFIERS.index(""))  # "5": the rank of the bare release
_DIGITS = frozenset("0123456789")

# Parsed items: int (a number), str (a qualifier's comparable rank: "0".."6" for
# the known ones, "7-word" for the others, compared as strings as Maven does),
# list (a sub-list).
_Item = int | str | list["_Item"]

# Token ranks in the key (see the module docstring): each token is (rank, value).
_BELOW = 0  # qualifier older than a release
_NULL_THEN_OLDER = 1  # null token, next non-null token is older than nothing
_END = 2
_NULL_RELEASE_THEN_NEWER = 3
_ABOVE_QUALIFIER = 4  # sp, unknown words
_SUBLIST_THEN_NEWER = 5
_NUMBER = 6  # numbers, 0 included when something newer follows it


def _qualifier(word: str, followed_by_digit: bool) -> str:
    if followed_by_digit and word in _SHORT:
        word = _SHORT[word]
    word = _ALIASES.get(word, word)
    if word in _QUALIFIERS:
        return str(_QUALIFIERS.index(word))
    return f"{len(_QUALIFIERS)}-{word}"


def _item(is_digit: bool, text: str) -> _Item:
    return int(text) if is_digit else _qualifier(text, False)


def _is_null(item: _Item) -> bool:
    if isinstance(item, int):
        return item == 0
    if isinstance(item, str):
        return item == _RELEASE
    return not item


def _normalize(items: list[_Item]) -> None:
    # Drop trailing null items, looking through (already normalized) sub-lists.
    i = len(items) - 1
    while i >= 0:
        if _is_null(items[i]):
            del items[i]
        elif not isinstance(items[i], list):
            break
        i -= 1


def parse_items(version: str) -> list[_Item]:
    """The item tree ComparableVersion builds, normalized (exposed for tests)."""
    text = version.lower()
    root: list[_Item] = []
    lists = [root]
    current = root

    def open_sublist() -> None:
        nonlocal current
        sub: list[_Item] = []
        current.append(sub)
        lists.append(sub)
        current = sub

    is_digit = False
    start = 0
    for i, ch in enumerate(text):
        if ch == "." or ch == "-":
            current.append(0 if i == start else _item(is_digit, text[start:i]))
            start = i + 1
            if ch == "-":
                open_sublist()
        elif ch in _DIGITS:
            if not is_digit and i > start:
                # Letters then digits: "1.0.0.X1" reads like "1.0.0-X1".
                if current:
                    open_sublist()
                current.append(_qualifier(text[start:i], True))
                start = i
                open_sublist()
            is_digit = True
        else:
            if is_digit and i > start:
                current.append(int(text[start:i]))
                start = i
                open_sublist()
            is_digit = False
    if len(text) > start:
        if not is_digit and current:
            open_sublist()
        current.append(_item(is_digit, text[start:]))
    for items in reversed(lists):
        _normalize(items)
    return root


def _tokens(items: list[_Item], out: list[int | str | None]) -> None:
    # The flattened stream: None opens a sub-list, ints are numbers, strings qualifiers.
    for item in items:
        if isinstance(item, list):
            out.append(None)
            _tokens(item, out)
        else:
            out.append(item)


def _sign(token: int | str | None) -> int:
    """How a token compares with "nothing" (-1 older, 0 null, 1 newer)."""
    if token is None:
        return 0
    if isinstance(token, int):
        return 1 if token else 0
    return (token > _RELEASE) - (token < _RELEASE)


def parse(version: str) -> Items:
    """Order items of a Maven version; raises InvalidVersion for an empty one or one with whitespace."""
    if not version or any(ch.isspace() for ch in version):
        raise InvalidVersion(SCHEME, version, "empty or contains whitespace")
    tokens: list[int | str | None] = []
    _tokens(parse_items(version), tokens)
    signs = [_sign(token) for token in tokens]
    while signs and signs[-1] == 0:
        signs.pop()
    following = 0
    encoded: list[tuple[int, int | str]] = []
    # Walk backwards so each null token knows the sign of the next non-null one.
    for token, sign in zip(reversed(tokens[: len(signs)]), reversed(signs), strict=True):
        if sign:
            following = sign
        newer = following > 0
        if token is None:
            encoded.append((_SUBLIST_THEN_NEWER, 0) if newer else (_NULL_THEN_OLDER, 1))
        elif isinstance(token, int):
            encoded.append((_NUMBER, token) if sign or newer else (_NULL_THEN_OLDER, 2))
        elif sign < 0:
            encoded.append((_BELOW, token))
        elif sign > 0:
            encoded.append((_ABOVE_QUALIFIER, token))
        else:
            encoded.append((_NULL_RELEASE_THEN_NEWER, 0) if newer else (_NULL_THEN_OLDER, 0))
    out: list[int | str] = []
    for rank, value in reversed(encoded):
        out += (rank, value)
    out.append(_END)
    return out


key = cached(SCHEME, parse)
