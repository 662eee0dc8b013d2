"""Lambda runtimes for the local stack: the workflow handlers in their own processes.

In the cloud every Lambda invocation runs in its own runtime, apart from Step Functions
and DynamoDB. Locally the whole cloud would otherwise share one Python process and one
GIL, so a Generate All job was CPU-bound at a fraction of the provider's rate limit.
``LambdaWorkerPool`` starts N worker processes (``python -m devstack.lambda_workers``);
each imports ``app`` and answers invocations over HTTP on 127.0.0.1 from a thread per
call, like concurrent Lambda containers. They talk to moto and the LLM over HTTP exactly
as the handlers do in the cloud. A worker exits when its parent does (its stdin closes),
so a killed stack leaves no orphans; a worker that dies is replaced, and the invocations
it was running fail the way a crashed Lambda runtime does (``Runtime.ExitError``), which
the state machine's Retry lists include.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from devstack.lambda_hook import Handler, function_name, invoke_handler

log = logging.getLogger("brightrun.local")

ROOT = Path(__file__).resolve().parents[1]
READY = "LAMBDA-WORKER-READY"
INVOKE_TIMEOUT_SECONDS = 900.0  # Lambda's maximum
# Concurrent invocations one worker serves (Map concurrency is spread over the pool).
WORKER_THREADS = 64


def worker_threads(env: dict[str, str] | None = None) -> int:
    """Enough threads for every call the adaptive target may keep in flight (the
    ceiling, GENERATION_MAX_IN_FLIGHT) plus the other steps, as Lambda would run them."""
    env = dict(os.environ) if env is None else env
    try:
        ceiling = int(env.get("GENERATION_MAX_IN_FLIGHT") or 0)
    except ValueError:
        ceiling = 0
    return max(WORKER_THREADS, ceiling + 16)


HANDLER_NAMES = (
    "prepare_job",
    "generate_item",
    "record_item_failure",
    "finish_job",
    "submit_batch",
    "poll_batch",
    "run_export",
    "recover_stalled_jobs",
)


def workflow_handlers() -> dict[str, Handler]:
    """The app's ``@app.lambda_function`` handlers by Chalice name."""
    import app as application

    return {name: getattr(application, name) for name in HANDLER_NAMES}


class _Worker:
    def __init__(self, index: int) -> None:
        self.index = index
        self.in_flight = 0
        self.invocations = 0
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devstack.lambda_workers"],
            cwd=ROOT,
            env=dict(os.environ),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith(READY):
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise RuntimeError(f"lambda worker {index} did not start: {line!r}")
        self.port = int(line.split()[-1])

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()  # the worker exits when its stdin closes
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


class LambdaWorkerPool:
    """Invokes handlers in worker processes, the least busy one first."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.size = size
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []

    def start(self) -> LambdaWorkerPool:
        # Started in parallel: each worker spends ~1 s importing the app.
        started: list[_Worker | BaseException] = [RuntimeError("not started")] * self.size

        def spawn(i: int) -> None:
            try:
                started[i] = _Worker(i)
            except BaseException as e:  # reported below, after every spawn has finished
                started[i] = e

        threads = [threading.Thread(target=spawn, args=(i,)) for i in range(self.size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        workers = [w for w in started if isinstance(w, _Worker)]
        if len(workers) != self.size:
            for w in workers:
                w.stop()
            raise next(e for e in started if isinstance(e, BaseException))
        self._workers = workers
        return self

    def stop(self) -> None:
        with self._lock:
            workers, self._workers = self._workers, []
        for w in workers:
            w.stop()

    @property
    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers]

    @property
    def invocations(self) -> int:
        return sum(w.invocations for w in self._workers)

    def _checkout(self) -> _Worker:
        with self._lock:
            if not self._workers:
                raise RuntimeError("the local Lambda runtimes are stopped")
            for i, w in enumerate(self._workers):
                if not w.alive:
                    log.warning("lambda worker %d (pid %d) died: replacing it", i, w.proc.pid)
                    self._workers[i] = _Worker(i)
            worker = min(self._workers, key=lambda w: w.in_flight)
            worker.in_flight += 1
            worker.invocations += 1
            return worker

    def invoke(self, function: str, payload: Any) -> tuple[int, bytes, str | None]:
        try:
            worker = self._checkout()
        except RuntimeError as e:
            body = {"errorType": "Lambda.ServiceException", "errorMessage": str(e)}
            return 200, json.dumps(body).encode(), "Unhandled"
        try:
            conn = http.client.HTTPConnection(
                "127.0.0.1", worker.port, timeout=INVOKE_TIMEOUT_SECONDS
            )
            try:
                conn.request(
                    "POST",
                    f"/invoke/{function_name(function)}",
                    body=json.dumps(payload).encode(),
                    headers={"Content-Type": "application/json"},
                )
                response = conn.getresponse()
                data = response.read()
                error = response.getheader("X-Amz-Function-Error")
                return 200, data, error
            finally:
                conn.close()
        except (OSError, http.client.HTTPException) as e:
            # The runtime died under the call: what Lambda reports for a crashed runtime.
            body = {"errorType": "Runtime.ExitError", "errorMessage": f"runtime exited: {e}"}
            return 200, json.dumps(body).encode(), "Unhandled"
        finally:
            with self._lock:
                worker.in_flight -= 1


# --------------------------------------------------------------------------- worker side


def _warm_clients() -> None:
    """Build the container and the DynamoDB client before taking calls, as a Lambda's
    init phase does: otherwise the first concurrent calls all find no client and each
    builds its own (each loads botocore's DynamoDB model)."""
    from chalicelib.bootstrap import get_container
    from chalicelib.store.records import shared_connection

    get_container()  # configures the records: one botocore client for every table
    assert shared_connection().client is not None


class _WarmThreadServer(HTTPServer):
    """Serves each invocation on a long-lived pool thread, not a new thread: pynamodb
    keeps a botocore session per thread, and a warm Lambda container reuses its
    clients, so a fresh thread per call would rebuild them every time."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._pool = ThreadPoolExecutor(max_workers=worker_threads(), thread_name_prefix="lambda")

    def process_request(self, request: Any, client_address: Any) -> None:
        self._pool.submit(self._serve_one, request, client_address)

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


def _serve() -> None:
    # Ctrl-C in the terminal reaches the whole process group: the launcher stops the
    # workers itself (closing their stdin), so they must not die half-way on SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    handlers = workflow_handlers()
    _warm_clients()

    class Invoke(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            payload = json.loads(self.rfile.read(length) or b"{}")
            function = self.path.rsplit("/", 1)[-1]
            _, data, error = invoke_handler(handlers, function, payload)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if error:
                self.send_header("X-Amz-Function-Error", error)
            self.end_headers()
            self.wfile.write(data)

    server = _WarmThreadServer(("127.0.0.1", 0), Invoke)

    def exit_with_parent() -> None:
        sys.stdin.read()  # returns at EOF: the parent closed the pipe or died
        os._exit(0)

    threading.Thread(target=exit_with_parent, daemon=True).start()
    print(f"{READY} {server.server_address[1]}", flush=True)
    # Nobody reads the pipe after the ready line: handler output (print, app.log) goes
    # to stderr, the launcher's console, instead of filling the pipe and blocking.
    os.dup2(2, 1)
    server.serve_forever()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    _serve()
