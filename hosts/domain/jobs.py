"""The dashboard's own long jobs (a copy or move, a backup made from a page) run in worker
threads of the process that accepted them, so the request answers at once; their progress
and outcome are in their task log row (hosts/tasklog.py start_job / end_job).

One bounded pool per process (DASHBOARD_TRANSFER_WORKERS threads): a burst of requests queues
rather than opening a thread, and a database connection, each.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections

from .. import tasklog
from ..models import Task

log = logging.getLogger(__name__)

_workers: ThreadPoolExecutor | None = None
_workers_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _workers
    with _workers_lock:
        if _workers is None:
            _workers = ThreadPoolExecutor(
                max_workers=int(settings.DASHBOARD_TRANSFER_WORKERS), thread_name_prefix="dashboard-job"
            )
        return _workers


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
    return _pool().submit(run_job, task, work)
