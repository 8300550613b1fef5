"""apk version ordering (Alpine, Wolfi, Chainguard), against apk-tools' own test data."""

from __future__ import annotations

import pytest

from shared.vulndb.versions import InvalidVersion, compare, parse_ok, sort_key

ECOSYSTEMS = ["Alpine", "Alpine:v3.19", "Wolfi", "Chainguard"]

# Lines of apk-tools' test/version.data ("a OP b"), the data its version test
# runs `apk version -t` over; those with versions apk-tools would not validate
# are in INVALID below.
VERSION_DATA = """
2.34 > 0.1.0_alpha
0.1.0_alpha = 0.1.0_alpha
0.1.0_alpha < 0.1.3_alpha
0.1.0_alpha2 > 0.1.0_alpha
0.1.0_alpha < 2.2.39-r1
2.2.39-r1 > 1.0.4-r3
1.0.4-r3 < 1.0.4-r4
1.0.4-r4 < 1.6
1.1 > 1.1_alpha1
1.2.1 > 1.2
1.2 < 1.3_alpha
1.3_alpha < 1.3_alpha2
0.7.0 < 0.8_beta1
0.8_beta1 < 0.8_beta2
3.10.18-r1 > 2.3.0b-r1
2.3.0b-r1 < 2.3.0b-r2
0.12.3 > 0.12
1.2.11 < 1.2.12.1
1.2.12.1 < 1.2.13
0.2.0-r1 < 3.1_p16
3.1_p16 < 3.1_p17
3.1_p17 > 1.06-r6
1.06-r6 < 006
006 > 1.0.0
1.2.2-r1 > 1.2.2
2.59 < 20050718-r1
3.9.8-r5 > 2.01.01_alpha10
2.01.01_alpha10 > 0.94
1.0 > 0.99.3.20040818
1.39 > 1.00_beta2
7.15.1-r1 > 1.02
1.02 < 1.03-r1
4.2.52_p2-r1 < 4.2.52_p4-r2
2.18.3-r10 > 1.05-r18
1.05-r18 < 1.05-r19
20060720 > 3.0.20060720
2.5.1-r8 < 2.5.1a-r1
1.3.5-r10 > 1.3.5-r8
20040401 > 2.0.0_rc3-r1
3.0.0-r2 < 021109-r3
021109-r3 < 20060512
0.9.16-r1 < 3.9_pre20060124
3.9_pre20060124 > 0.01
0.01 < 0.06
1.1.7 < 6b-r7
0.10.0-r1 > 0.10.0
0.10.0 < 0.10.1_rc1
2.0.2 > 1.1a
1.1a < 1.3a
1.0-r1 > 0.15.1b
0.15.1b-r2 > 0.15.1b
0.0.31 < 0.0.50
22.7-r1 < 22.7.3-r1
22.7.3-r1 > 22.7
2.1_pre20 < 2.1_pre26
2.10.1 > 02.08.01b
02.08.01b < 4.77
2.02.06 < 2.02.10
3.81 > 1.6d
1.6d > 1.2.07.8
1.2.07.8 < 1.2.12.04
1.2.12.04 < 1.2.12.05
1.07-r1 < 1.07.5
1.07.5 > 1.07
0.1_pre20060810 < 0.1_pre20060817
3.3.17 > 0.59s-r11
4.01 < 4.20
4.20 > 0.20070118
0.20070118 < 0.20070207_rc1
0.20070207_rc1 < 1.0
2.3.30-r2 < 3.7_p1
4.5_p1-r1 > 4.5_p1
4.5_p1 > 0.9.8c-r1
0.9.8c-r1 < 0.9.8d
2.2.3-r2 < 013
013 < 014-r1
0.1.23 < 5b-r9
3.2.7 > 0.3.1_rc8
1.7 < 1.7b
1.7b < 1.8.4-r3
1.8.5 < 1.8.5_p2
0.98 < 1.00
1.4.9-r2 < 2.9.11_pre20051101-r2
2.9.11_pre20051101-r3 > 2.9.11_pre20051101
1.6.8_p12-r1 > 1.6.8_p9-r2
0.40-r1 < 2.25b-r5
0.9.28.1 < 087-r1
087-r1 < 103
104-r11 > 104-r9
5.52-r1 > 1.2.5_rc2
20040406-r1 > 2.12r-r4
2.12r-r4 < 2.12r-r5
7.0.17 < 7.0.174
1.3-r0 < 1.3.1-r0
1.3_pre1-r1 < 1.3.2
1.0_p10-r0 > 1.0_p9-r0
0.1.0_alpha_pre2 < 0.1.0_alpha
1.0.0_pre20191002222144-r0 < 1.0.0_pre20210530193627-r0
6.0_pre1 < 6.0
6.1_pre1 < 6.1
6.0_p1 > 6.0
6.1_p1 > 6.1
"""

# Beyond the data file: the grammar's other tokens, ordered as apk-tools'
# src/version.c orders them where token types differ.
MORE = [
    ("1.0_rc1", "1.0", -1),
    ("1.0", "1.0_p1", -1),
    ("1.0_alpha", "1.0_beta", -1),
    ("1.0_beta", "1.0_pre", -1),
    ("1.0_pre", "1.0_rc", -1),
    ("1.0_cvs", "1.0_svn", -1),
    ("1.0_svn", "1.0_git", -1),
    ("1.0_git", "1.0_hg", -1),
    ("1.0_hg", "1.0_p", -1),
    ("1.0", "1.0-r0", -1),
    ("1.0-r0", "1.0-r1", -1),
    ("1.0-r9", "1.0-r10", -1),
    ("1.0-r1", "1.0.1", -1),
    ("1.0", "1.0a", -1),
    ("1.0a", "1.0b", -1),
    ("1.0z", "1.0.1", -1),
    ("1.02", "1.1", -1),
    ("1.001", "1.01", -1),
    ("1.0", "1.00", -1),
    ("1.0", "1.0~abc123", -1),
    ("1.0~abc123", "1.0~abc124", -1),
    ("1.0~abc123-r1", "1.0~abc124-r0", -1),
    ("1.0_git20240101", "1.0_git20240102", -1),
    ("6.0_pre1", "6.0_pre1-r1", -1),
    ("006", "6", 0),
]

INVALID = [
    "",
    "a1.0",
    "1.0bc",
    "1.0A",
    "1.0_foo",
    "23_foo",
    "1.0_",
    "1.0-1",
    "1.0-r",
    "1.0-r1-r2",
    "1.0-r1.1",
    "1.0a1",
    "1.0a.1",
    "1.0_rc1.2",
    "1.0~",
    "1.0~XYZ",
    "1.0.",
    "1..0",
    " 1.0",
]


def _data() -> list[tuple[str, str, int]]:
    ops = {"<": -1, "=": 0, ">": 1}
    rows = []
    for line in VERSION_DATA.strip().splitlines():
        a, op, b = line.split()
        rows.append((a, b, ops[op]))
    return rows


@pytest.mark.parametrize(("a", "b", "expected"), _data() + MORE)
def test_apk_tools_examples(a: str, b: str, expected: int) -> None:
    for ecosystem in ECOSYSTEMS:
        assert compare(ecosystem, a, b) == expected, (ecosystem, a, b)
        assert compare(ecosystem, b, a) == -expected, (ecosystem, b, a)


@pytest.mark.parametrize("version", INVALID)
def test_versions_apk_would_not_validate_are_refused(version: str) -> None:
    assert not parse_ok("Alpine", version)
    with pytest.raises(InvalidVersion, match=r"Alpine:v3\.19"):
        sort_key("Alpine:v3.19", version)
