"""Operation intentions of LXDClient (mixed into LXDClient): list, read, cancel, wait."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from .errors import LXDAPIError, LXDError, OperationFailed
from .operation import Operation


def _path(op_id: str) -> str:
    return f"/1.0/operations/{quote(op_id, safe='')}"


class OperationsAPI:
    """Methods here use self.call / self.get from LXDClient."""

    def operation(self, op_id: str) -> Operation:
        return Operation.from_lxd(self.get(_path(op_id), project_scoped=False))

    def operations(self) -> list[Operation]:
        """Every operation of the project, running or recently finished (LXD forgets a
        finished one about 5 s after its end)."""
        listing = self.get("/1.0/operations", params={"recursion": 1}) or {}
        return [Operation.from_lxd(op) for ops in listing.values() for op in (ops or [])]

    def cancel_operation(self, op_id: str) -> None:
        self.call("DELETE", _path(op_id), project_scoped=False)

    def wait_step(self, op_id: str, seconds: int) -> Operation:
        """LXD's /wait, once: the operation as it is after at most `seconds`, finished or not,
        failed or not (LXD answers 200 either way).  404 once LXD has forgotten it."""
        seconds = max(1, int(seconds))
        return Operation.from_lxd(
            self.get(
                _path(op_id) + "/wait",
                params={"timeout": seconds},
                timeout=(self.timeout[0], seconds + 5),
                project_scoped=False,
            )
        )

    def wait(self, operation: Operation | str, timeout: float = 120) -> Operation:
        """Follow an operation to its end; a failure comes out as OperationFailed with LXD's
        error.  A synchronous answer (an operation without an id) is over already."""
        op_id = operation.id if isinstance(operation, Operation) else operation
        if not op_id:
            return operation
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LXDError(f"operation {op_id} on {self.label} still running after {timeout:g} s")
            try:
                op = self.wait_step(op_id, min(int(remaining), 10))
            except LXDAPIError as exc:
                if exc.error_code == 404:
                    raise LXDError(
                        f"operation {op_id} on {self.label} ended and LXD no longer knows its outcome"
                    ) from exc
                raise
            if op.is_final:
                if not op.succeeded:
                    raise OperationFailed(op.error or f"operation {op.status or 'failed'}", op)
                return op

    def start(self, method: str, path: str, body: Any = None, **kwargs) -> Operation:
        """Send a write; the Operation it started (follow it with wait).  LXD answers some
        writes synchronously: they come back as an operation already over."""
        result = self.call(method, path, json_body=body, **kwargs)[0]
        if not isinstance(result, Operation):
            return Operation.done(result)
        return result

    def run(self, method: str, path: str, timeout: float = 120, **kwargs) -> Any:
        """Send a write and, if LXD made it an operation, follow it to the end."""
        result, _ = self.call(method, path, **kwargs)
        if isinstance(result, Operation):
            return self.wait(result, timeout=timeout)
        return result
