"""The dashboard's own long jobs (a copy or move, a backup made from a page) run in worker
threads of the process that accepted them, so the request answers at once; their progress
and outcome are in their task log row (hosts/tasklog.py start_job / end_job).

They run in hosts/concurrency.py's jobs() pool (DASHBOARD_TRANSFER_WORKERS threads).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future

from django.db import close_old_connections

from ..concurrency import jobs
from ..models import Task
from . import tasklog

log = logging.getLogger(__name__)


def run_job(task: Task, work: Callable[[], object]) -> object:
    """Run `work` in this thread with its own database connection; an unexpected error ends
    the task as failed rather than leaving it running."""
    close_old_connections()
    try:
        return work()
    except Exception as exc:
        log.exception("job %s failed", task.operation_id)
        tasklog.end_job(task, error=f"the job failed unexpectedly: {exc}")
        return None
    finally:
        close_old_connections()


def submit(task: Task, work: Callable[[], object]) -> Future:
    return jobs().submit(run_job, task, work)
