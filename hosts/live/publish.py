"""Pushing the dashboard's own task log rows (a copy or move, a scheduled backup) to the pages,
on the same path as the relay's LXD operations: an `operation.update` message in the host's
group, rendered by the consumer as a task row.  No second progress mechanism: only the rows
the task log already shows.

Called from any thread (a transfer's worker, the scheduler's).  With the in-memory channel
layer only this process's hub can hear it, and its queues belong to the hub's loop: the send
is handed to that loop.  A cross-process layer (Redis) takes it from anywhere.
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from ..domain import tasklog
from ..models import Task
from . import groups
from .hub import hub_loop

log = logging.getLogger(__name__)


def publish_task(task: Task) -> None:
    message = {**groups.task_message(task), "seq": groups.next_seq()}
    group = groups.host_group(task.host_name)
    layer = get_channel_layer()
    try:
        if isinstance(layer, InMemoryChannelLayer):
            loop = hub_loop()
            if loop is None:
                return  # no page in this process listens
            asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop)
        else:
            async_to_sync(layer.group_send)(group, message)
    except Exception:  # a page misses a row update; the task log itself is written
        log.warning("could not push task %s", task.operation_id, exc_info=True)


def on_task_saved(sender, instance: Task, **kwargs) -> None:
    """post_save of Task: push the dashboard's own jobs (the relay pushes LXD's operations)."""
    if instance.op_class in tasklog.JOB_CLASSES:
        from django.db import transaction

        transaction.on_commit(lambda: publish_task(instance))
