"""``hullwatch scan`` with a vulnerability database: exemptions, expiry, VEX, --ignore-unfixed, gates, formats.

Advisories are hand-written OSV records in tests/data/osv (each names the public advisory it mirrors).
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from shared.vulndb.importer import import_paths
from tests.support import images as I
from tests.support.cli import Run, run_cli

DATA = Path(__file__).resolve().parent.parent / "data"
REPO = Path(__file__).resolve().parent.parent.parent
SARIF_SCHEMA = REPO / "node_modules" / "@microsoft" / "jest-sarif" / "lib" / "schemas" / "sarif-2.1.0-rtm.5.json"

ALPINE_DB = (
    "P:libcrypto3\nV:3.1.4-r4\nA:x86_64\no:openssl\nL:Apache-2.0\n\n"
    "P:libssl3\nV:3.1.4-r4\nA:x86_64\no:openssl\nL:Apache-2.0\n\n"
    "P:zlib\nV:1.3.1-r0\nA:x86_64\no:zlib\nL:Zlib\n\n"
    "P:busybox\nV:1.36.1-r15\nA:x86_64\no:busybox\nL:GPL-2.0-only\n\n"
)

UNFIXED = {
    "id": "ALPINE-TEST-ZLIB-UNFIXED",
    "modified": "2024-03-01T00:00:00Z",
    "aliases": ["CVE-2023-45853"],
    "summary": "zlib: integer overflow in MiniZip zipOpenNewFileInZip4_64",
    "details": "Mirrors the Alpine secdb status of CVE-2023-45853 for zlib (MiniZip, not built): affected, no fix.",
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
    "affected": [
        {
            "package": {"ecosystem": "Alpine:v3.19", "name": "zlib"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
        }
    ],
}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, Path]:
    osv = tmp_path / "osv"
    osv.mkdir()
    (osv / "alpine.json").write_bytes((DATA / "osv" / "ALPINE-CVE-2024-0727.json").read_bytes())
    (osv / "unfixed.json").write_text(json.dumps(UNFIXED))
    kev = tmp_path / "kev.json"
    kev.write_text(
        json.dumps(
            {
                "title": "t",
                "catalogVersion": "1",
                "dateReleased": "2025-01-01",
                "count": 1,
                "vulnerabilities": [
                    {
                        "cveID": "CVE-2024-0727",
                        "dateAdded": "2024-03-01",
                        "dueDate": "2024-03-22",
                        "knownRansomwareCampaignUse": "Unknown",
                        "vulnerabilityName": "test entry",
                    }
                ],
            }
        )
    )
    dbp = tmp_path / "vulndb.sqlite"
    import_paths(dbp, [osv, kev])
    img = I.image(
        [
            I.layer(
                [I.file("etc/os-release", "ID=alpine\nVERSION_ID=3.19.1\n"), I.file("lib/apk/db/installed", ALPINE_DB)]
            )
        ]
    )
    layout = I.write_oci_layout(tmp_path / "img", img)
    return {"db": dbp, "layout": layout, "tmp": tmp_path}


def scan(env: dict[str, Path], *args: str, sandbox: str = "s") -> Run:
    return run_cli(["scan", f"oci:{env['layout']}", "--db", str(env["db"]), *args], env["tmp"] / sandbox)


def findings(r: Run) -> list[dict[str, object]]:
    assert r.code in (0, 1, 3), r.stderr
    return json.loads(r.stdout)["results"][0]["findings"]  # type: ignore[no-any-return]


def test_findings_kev_priority_and_unfixed(env: dict[str, Path]) -> None:
    fs = findings(scan(env, "-f", "json"))
    got = [(f["id"], f["package_name"], f["fix_available"], f["kev"] is not None) for f in fs]
    assert got == [
        ("CVE-2024-0727", "libcrypto3", True, True),
        ("CVE-2024-0727", "libssl3", True, True),
        ("CVE-2023-45853", "zlib", False, False),
    ], "KEV-listed fixable findings come first"
    assert fs[2]["severity"] == "CRITICAL" and fs[2]["fixed_versions"] == []
    hidden = findings(scan(env, "-f", "json", "--ignore-unfixed", sandbox="s2"))
    assert [f["package_name"] for f in hidden] == ["libcrypto3", "libssl3"]


def test_exemption_suppresses_with_reason_and_expired_one_says_so(env: dict[str, Path]) -> None:
    policy = env["tmp"] / "policy.yaml"
    policy.write_text(
        "exemptions:\n"
        "  - id: CVE-2023-45853\n"
        "    package: 'pkg:apk/alpine/zlib@*'\n"
        "    reason: MiniZip is not built into Alpine's zlib\n"
        "    expires: 2999-01-01\n"
        "  - id: CVE-2024-0727\n"
        "    fix_status: fixed\n"
        "    reason: old waiver\n"
        "    expires: 2020-01-01\n"
    )
    r = scan(env, "-f", "json", "--policy", str(policy))
    fs = {(f["id"], f["package_name"]): f for f in findings(r)}
    zlib = fs[("CVE-2023-45853", "zlib")]
    assert zlib["suppressed"] == {
        "kind": "exemption",
        "reason": "MiniZip is not built into Alpine's zlib",
        "source": f"{policy}#1",
        "expires": "2999-01-01",
    }
    crypto = fs[("CVE-2024-0727", "libcrypto3")]
    assert crypto["suppressed"] is None
    assert crypto["expired_exemptions"] == [{"reason": "old waiver", "source": f"{policy}#2", "expired": "2020-01-01"}]
    warnings = json.loads(r.stdout)["results"][0]["warnings"]
    assert any(w["code"] == "exemption-expired" and "expired on 2020-01-01" in w["message"] for w in warnings)


def test_exemption_without_reason_is_refused(env: dict[str, Path]) -> None:
    policy = env["tmp"] / "policy.yaml"
    policy.write_text("exemptions:\n  - id: CVE-2023-45853\n")
    r = scan(env, "--policy", str(policy))
    assert r.code == 2 and "exemption 1: has no reason" in r.stderr


def test_vex_not_affected_suppresses(env: dict[str, Path]) -> None:
    vex = env["tmp"] / "doc.openvex.json"
    vex.write_text(
        json.dumps(
            {
                "@context": "https://openvex.dev/ns/v0.2.0",
                "@id": "https://example.com/vex/1",
                "author": "platform team",
                "timestamp": "2024-03-01T00:00:00Z",
                "version": 1,
                "statements": [
                    {
                        "vulnerability": {"name": "CVE-2024-0727"},
                        "products": [{"@id": "pkg:apk/alpine/libssl3"}],
                        "status": "not_affected",
                        "justification": "vulnerable_code_not_in_execute_path",
                    }
                ],
            }
        )
    )
    fs = findings(scan(env, "-f", "json", "--vex", str(vex)))
    state = {f["package_name"]: f["suppressed"] for f in fs}
    assert state["libssl3"]["kind"] == "vex"  # type: ignore[index]
    assert "vulnerable_code_not_in_execute_path" in state["libssl3"]["reason"]  # type: ignore[index]
    assert state["libcrypto3"] is None, "the statement names libssl3 only"


def test_exit_code_gate(env: dict[str, Path]) -> None:
    assert scan(env, "--exit-code", "3", "--fail-on", "CRITICAL", sandbox="a").code == 3
    policy = env["tmp"] / "p.yaml"
    policy.write_text("exemptions:\n  - severity: CRITICAL\n    reason: accepted risk\n")
    assert scan(env, "--exit-code", "3", "--fail-on", "CRITICAL", "--policy", str(policy), sandbox="b").code == 0
    # CVE-2024-0727's record carries no rating (UNKNOWN): below HIGH, but any finding trips a bare --exit-code
    assert scan(env, "--exit-code", "3", "--fail-on", "HIGH", "--policy", str(policy), sandbox="c").code == 0
    assert scan(env, "--exit-code", "3", "--policy", str(policy), sandbox="d").code == 3


def test_table_groups_by_severity_with_fixed_versions(env: dict[str, Path]) -> None:
    r = scan(env)
    assert r.code == 0, r.stderr
    assert "Vulnerabilities: 1 CRITICAL" in r.stdout
    assert "3.1.4-r5" in r.stdout and "no fix yet" in r.stdout and "KEV 2024-03-01" in r.stdout
    assert r.stdout.index("CVE-2023-45853") < r.stdout.index("CVE-2024-0727"), "CRITICAL is listed first"


def test_sarif_validates_against_the_2_1_0_schema(env: dict[str, Path]) -> None:
    if not SARIF_SCHEMA.exists():
        pytest.fail(f"{SARIF_SCHEMA} missing: run npm ci (package.json pins @microsoft/jest-sarif)")
    r = scan(env, "-f", "sarif")
    doc = json.loads(r.stdout)
    jsonschema.validate(doc, json.loads(SARIF_SCHEMA.read_text()))
    run = doc["runs"][0]
    assert [res["ruleId"] for res in run["results"]] == ["CVE-2024-0727", "CVE-2024-0727", "CVE-2023-45853"]
    rule = next(x for x in run["tool"]["driver"]["rules"] if x["id"] == "CVE-2023-45853")
    assert rule["properties"]["security-severity"] == "9.8"


def test_cyclonedx_vulnerabilities_validate(env: dict[str, Path]) -> None:
    r = scan(env, "-f", "cyclonedx")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(r.stdout) is None
    vulns = json.loads(r.stdout)["vulnerabilities"]
    assert sorted(v["id"] for v in vulns) == ["CVE-2023-45853", "CVE-2024-0727", "CVE-2024-0727"]


def test_missing_database_given_explicitly_is_an_input_error(tmp_path: Path) -> None:
    img = I.write_oci_layout(tmp_path / "img", I.image([I.layer([I.file("etc/os-release", "ID=alpine\n")])]))
    r = run_cli(["scan", f"oci:{img}", "--db", str(tmp_path / "none.sqlite")], tmp_path / "s")
    assert r.code == 2 and "no vulnerability database here" in r.stderr


def test_db_cli_import_and_info(tmp_path: Path) -> None:
    dbp = tmp_path / "v.sqlite"
    r = run_cli(["db", "import", str(DATA / "osv"), "--db", str(dbp)], tmp_path / "s")
    assert r.code == 0, r.stderr
    assert "3 records written" in r.stdout
    info = run_cli(["db", "info", "--db", str(dbp), "-f", "json"], tmp_path / "s")
    doc = json.loads(info.stdout)
    # the upstream record has GIT ranges only: commits, not package versions, so nothing to match by
    assert doc["ecosystems"] == {"Alpine:v3.19": 1, "Debian:11": 1}
    assert doc["newest_modified"] == "2024-02-05T00:00:00Z"
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": "X", "modified": ')
    r = run_cli(["db", "import", str(bad), "--db", str(dbp)], tmp_path / "s")
    assert r.code == 2 and str(bad) in r.stderr and "not valid JSON" in r.stderr


def test_severity_filter(env: dict[str, Path]) -> None:
    fs = findings(scan(env, "-f", "json", "--severity", "CRITICAL"))
    assert [(f["id"], f["severity"]) for f in fs] == [("CVE-2023-45853", "CRITICAL")]
    bad = scan(env, "--severity", "SEVERE", sandbox="s2")
    assert bad.code == 2 and "unknown severities ['SEVERE']" in bad.stderr
