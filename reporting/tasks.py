"""django-q2 tasks of the reporting app (thin edges: each calls one service)."""

from __future__ import annotations

from reporting.export_jobs import export_job_run


def write_export(job_id: int) -> str:
    """Write one background export (``reporting.export_jobs.export_job_run``)."""
    return export_job_run(job_id)
