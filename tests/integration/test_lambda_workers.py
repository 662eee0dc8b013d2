"""The local Lambda runtimes: handlers in worker processes, errors as Lambda reports them."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator

import pytest

from devstack.lambda_workers import LambdaWorkerPool

pytestmark = pytest.mark.slow
ARN = "arn:aws:lambda:us-east-1:123456789012:function:conversation-studio-local-"


@pytest.fixture(scope="module")
def pool() -> Iterator[LambdaWorkerPool]:
    workers = LambdaWorkerPool(1).start()
    yield workers
    workers.stop()


def test_a_handler_error_is_reported_like_lambda(pool: LambdaWorkerPool) -> None:
    status, body, error = pool.invoke(ARN + "record_item_failure", {"unexpected": True})
    payload = json.loads(body)
    assert status == 200 and error == "Unhandled"
    assert payload["errorType"] and payload["errorType"] != "ResourceNotFoundException"
    assert payload["errorMessage"]
    assert pool.pids[0] != os.getpid()  # it ran in the worker, not here


def test_an_unknown_function_is_not_found(pool: LambdaWorkerPool) -> None:
    _, body, error = pool.invoke(ARN + "no_such_handler", {})
    assert error == "Unhandled"
    assert json.loads(body)["errorType"] == "ResourceNotFoundException"


def test_ctrl_c_in_the_terminal_does_not_kill_a_worker(pool: LambdaWorkerPool) -> None:
    before = pool.pids[0]
    os.kill(before, signal.SIGINT)  # what a terminal's Ctrl-C sends the process group
    time.sleep(0.5)
    assert pool._workers[0].alive
    _, body, _ = pool.invoke(ARN + "no_such_handler", {})
    assert json.loads(body)["errorType"] == "ResourceNotFoundException"
    assert pool.pids[0] == before


def test_a_dead_worker_is_replaced(pool: LambdaWorkerPool) -> None:
    before = pool.pids[0]
    os.kill(before, signal.SIGKILL)
    deadline = time.time() + 10
    while time.time() < deadline and pool._workers[0].alive:
        time.sleep(0.05)
    _, body, error = pool.invoke(ARN + "no_such_handler", {})
    assert json.loads(body)["errorType"] == "ResourceNotFoundException"
    assert pool.pids[0] != before


def test_workers_exit_when_the_pool_stops() -> None:
    workers = LambdaWorkerPool(2).start()
    pids = workers.pids
    assert len(set(pids)) == 2
    workers.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    _, body, error = workers.invoke(ARN + "finish_job", {})
    stopped = json.loads(body)
    assert error == "Unhandled" and "stopped" in stopped["errorMessage"]
    assert stopped["errorType"] == "Lambda.ServiceException"  # retried by the state machine
