"""``make audit`` verdicts, from recorded pip-audit outputs (no network)."""

from __future__ import annotations

import json

import pytest

from operations.dependency_audit import Verdict, audit_verdict, ignore_ids

UNREACHABLE_OSV = "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='api.osv.dev')"


def _report(*deps):
    return json.dumps({"dependencies": list(deps), "fixes": []})


def test_a_finding_fails_and_names_the_package_the_id_and_the_fix():
    out = _report(
        {
            "name": "django",
            "version": "5.2.1",
            "vulns": [{"id": "PYSEC-1", "fix_versions": ["5.2.2"]}],
        },
        {"name": "numpy", "version": "2.3.5", "vulns": []},
    )
    verdict = audit_verdict(1, out, "")
    assert verdict.code == 1
    assert verdict.lines == [
        "pip-audit: django 5.2.1: PYSEC-1 (fix: 5.2.2)",
        "pip-audit: 1 finding(s)",
    ]


def test_no_finding_passes_and_counts_the_packages():
    out = _report({"name": "numpy", "version": "2.3.5", "vulns": []})
    assert audit_verdict(0, out, "") == Verdict(
        0,
        ["pip-audit: 1 pinned packages, no known vulnerability"],
    )


def test_an_unreachable_service_is_one_clear_line_and_not_a_failure():
    every_dep_404 = _report(
        {"name": "numpy", "skip_reason": "Dependency not found on PyPI and could not be audited"}
    )
    for verdict in (audit_verdict(1, "", UNREACHABLE_OSV), audit_verdict(0, every_dep_404, "")):
        assert verdict.code == 0
        assert verdict.lines == [
            "pip-audit: could not reach the vulnerability service; not audited"
        ]


def test_another_pip_audit_failure_is_a_failure_with_its_last_line():
    verdict = audit_verdict(2, "", "Traceback...\nValueError: bad requirement line 3")
    assert verdict == Verdict(1, ["pip-audit failed (exit 2): ValueError: bad requirement line 3"])


def test_an_ignored_vulnerability_needs_a_reason():
    assert ignore_ids("# header\nGHSA-xxxx  # not reachable: we never parse X\n\n") == ["GHSA-xxxx"]
    with pytest.raises(ValueError, match="line 2: PYSEC-9 has no '# reason'"):
        ignore_ids("# header\nPYSEC-9\n")
