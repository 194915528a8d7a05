"""``make audit``: pip-audit over every pinned requirement, hard on findings, soft (one
clear line, exit 0) only when the vulnerability service cannot be reached.

Audited: ``constraints.txt``, the pinned closure of ``requirements.txt`` and
``requirements-dev.txt`` (every transitive dependency, exact versions), with ``--no-deps
--disable-pip`` so nothing is resolved or installed: the pins are the environment. A known
finding that cannot be fixed by a pin bump is listed in ``.ci/pip-audit-ignore.txt`` as
``ID  # reason``; an entry without a reason is refused.

Exit 0: no finding (or every finding ignored with a reason), or the service unreachable
(said so); 1: a finding, or pip-audit failed for another reason; 2: a bad ignore file.
No Django import: runs before the settings exist.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PINS = ROOT / "constraints.txt"
IGNORE_FILE = ROOT / ".ci" / "pip-audit-ignore.txt"
# pip-audit's own words when it cannot reach the service (a proxy that serves only the
# package index answers 404 for every project's JSON, which reads as "not found on PyPI").
UNREACHABLE = (
    "ConnectionError",
    "NameResolutionError",
    "Max retries exceeded",
    "Failed to resolve",
    "timed out",
)
NOT_FOUND = "Dependency not found on PyPI"


@dataclass(frozen=True)
class Verdict:
    code: int
    lines: list[str]


def ignore_ids(text: str) -> list[str]:
    """IDs from the ignore file; every entry needs ``# reason``."""
    ids = []
    for n, line in enumerate(text.splitlines(), start=1):
        entry, _, reason = line.partition("#")
        if not entry.strip():
            continue
        if not reason.strip():
            raise ValueError(f"{IGNORE_FILE.name} line {n}: {entry.strip()} has no '# reason'")
        ids.append(entry.split()[0])
    return ids


def audit_verdict(returncode: int, stdout: str, stderr: str) -> Verdict:
    """Classify one pip-audit run (``-f json``)."""
    try:
        report = json.loads(stdout)
    except ValueError:
        if any(word in stderr for word in UNREACHABLE):
            return Verdict(0, ["pip-audit: could not reach the vulnerability service; not audited"])
        tail = stderr.strip().splitlines()[-1:] or ["(no output)"]
        return Verdict(1, [f"pip-audit failed (exit {returncode}): {tail[0]}"])
    deps = report.get("dependencies", [])
    findings = [
        f"{d['name']} {d.get('version', '?')}: {v['id']} (fix: {_fixes(v)})"
        for d in deps
        for v in d.get("vulns", [])
    ]
    skipped = [d["name"] for d in deps if NOT_FOUND in str(d.get("skip_reason", ""))]
    lines = [f"pip-audit: {f}" for f in findings]
    if findings:
        return Verdict(1, [*lines, f"pip-audit: {len(findings)} finding(s)"])
    if skipped and len(skipped) == len(deps):
        return Verdict(0, ["pip-audit: could not reach the vulnerability service; not audited"])
    if skipped:
        names = ", ".join(skipped)
        return Verdict(0, [f"pip-audit: {len(skipped)} package(s) could not be audited: {names}"])
    return Verdict(0, [f"pip-audit: {len(deps)} pinned packages, no known vulnerability"])


def _fixes(vuln: dict) -> str:
    return ", ".join(vuln.get("fix_versions") or ["none"])


def main() -> int:
    try:
        ids = ignore_ids(IGNORE_FILE.read_text() if IGNORE_FILE.exists() else "")
    except ValueError as exc:
        print(f"pip-audit: {exc}", file=sys.stderr)
        return 2
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        "-r",
        str(PINS),
        "--no-deps",
        "--disable-pip",
        "--progress-spinner",
        "off",
        "-f",
        "json",
        *[arg for i in ids for arg in ("--ignore-vuln", i)],
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600)
    verdict = audit_verdict(run.returncode, run.stdout, run.stderr)
    print("\n".join(verdict.lines))
    return verdict.code


if __name__ == "__main__":
    sys.exit(main())
