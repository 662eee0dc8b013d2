"""The whole cloud on one machine: ``make dev`` (``python -m devstack.launcher``).

One command brings up, on 127.0.0.1 and with no AWS account or Docker:
- moto's server, provisioned by creating ``infra/template.json`` through moto's
  CloudFormation (local cannot drift from cloud);
- the real ASL executed by moto, its Lambda tasks answered by the app's handlers
  (``lambda_hook``), in worker processes like Lambda runtimes (``lambda_workers``;
  ``--lambda-workers 0`` runs them in this process);
- the Chalice app and the built frontend on one origin;
- the LLM: Claude when ANTHROPIC_API_KEY is set, otherwise the offline Messages-API
  simulator, announced as such;
- persistence: tables and the export bucket are snapshotted under the data folder
  (when changed, every few seconds, and on exit) and restored on start.
"""

from __future__ import annotations

import argparse
import json
import logging
import mimetypes
import os
import shutil
import signal
import sys
import threading
import time
import urllib.request
from copy import deepcopy
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chalicelib.library_pins import require_version

log = logging.getLogger("brightrun.local")

ROOT = Path(__file__).resolve().parents[1]
PINNED_CHALICE = "1.34.0"  # thread_local_requests swaps in chalice.local's class
ACCOUNT = "123456789012"
REGION = "us-east-1"
STAGE = "local"
APP_NAME = "conversation-studio"
STACK_NAME = "brightrun-local"
# Resources that belong to the merged Chalice package or the CDN, not to the local stack.
CLOUD_ONLY_TYPES = (
    "AWS::Serverless::Function",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudFront::Distribution",
    "AWS::CloudFront::OriginAccessControl",
    "AWS::IAM::ManagedPolicy",
    "AWS::Cognito::UserPool",
    "AWS::Cognito::UserPoolClient",
    # The edge and its logs: WAF, API Gateway's stage settings and log groups (the
    # function ones are fragments of Chalice's, without a name of their own).
    "AWS::Serverless::Api",
    "AWS::WAFv2::WebACL",
    "AWS::WAFv2::WebACLAssociation",
    "AWS::ApiGateway::Account",
    "AWS::Logs::LogGroup",
)
CLOUD_ONLY_RESOURCES = ("FrontendBucketPolicy", "AccessLogBucketPolicy", "ApiGatewayCloudWatchRole")
WRITE_TARGETS = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
# What CloudFront, the cloud's front door, accepts: a URL of at most 8,192 bytes, and at
# most 20,480 bytes of request line plus headers. The local server refuses the same, so a
# client that works locally works in the cloud (answers: docs/security.md).
MAX_URL_BYTES = 8192
MAX_HEAD_BYTES = 20480
# The local server's own refusals, as codes of the API's error shape.
HTTP_ERROR_CODES = {
    400: "bad_request",
    408: "request_timeout",
    414: "uri_too_long",
    431: "headers_too_large",
    501: "not_implemented",
    505: "http_version_not_supported",
}


@dataclass(frozen=True)
class DemoUser:
    email: str
    password: str
    tenant_id: str
    organisation: str


# The local stack's sign-ins (moto's Cognito; documented, never used in the cloud). The
# user pool is re-created on every start, so tenants are fixed here: data kept under
# .data/ stays with its owner. Harbor Pine owns the default tenant, so data created
# with AUTH_MODE=none (which maps everyone to DEFAULT_TENANT) is theirs after sign-in.
DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("owner@harbor-pine.example", "HarborPine-demo-2026", "tenant-demo", "Harbor Pine"),
    DemoUser("owner@northwind.example", "Northwind-demo-2026", "tenant-northwind", "Northwind"),
)


def local_function_arn(logical_id: str) -> str:
    snake = "".join("_" + ch.lower() if ch.isupper() else ch for ch in logical_id).lstrip("_")
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{APP_NAME}-{STAGE}-{snake}"


def localize_template(template: dict[str, Any]) -> dict[str, Any]:
    """The infra template minus cloud-only resources, with Lambda ARNs made local."""
    from infra.build import WORKFLOW_FUNCTIONS

    functions = set(WORKFLOW_FUNCTIONS.values())
    t = deepcopy(template)
    t.pop("Rules", None)  # parameter assertions for the cloud's regions
    t["Resources"] = {
        name: res
        for name, res in t["Resources"].items()
        if res["Type"] not in CLOUD_ONLY_TYPES and name not in CLOUD_ONLY_RESOURCES
    }

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            att = node.get("Fn::GetAtt")
            if isinstance(att, list) and att and att[0] in functions:
                return local_function_arn(att[0])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    t["Resources"] = walk(t["Resources"])
    # Drop whatever depends on a removed resource (repeat until stable).
    known = set(t.get("Parameters", {}))
    while True:
        kept = set(t["Resources"]) | known
        dropped = [n for n, r in t["Resources"].items() if not _references(r) <= kept]
        if not dropped:
            break
        for name in dropped:
            del t["Resources"][name]
    kept = set(t["Resources"]) | known
    t["Outputs"] = {k: v for k, v in t.get("Outputs", {}).items() if _references(v) <= kept}
    return t


def _references(node: Any) -> set[str]:
    """Logical ids a template fragment refers to (Ref, GetAtt, ${X} in Sub)."""
    import re

    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str) and not value.startswith("AWS::"):
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".")[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                local = set(value[1]) if isinstance(value, list) and len(value) > 1 else set()
                for ref in re.findall(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z]+)?\}", text):
                    if ref not in local:
                        found.add(ref)
                if isinstance(value, list) and len(value) > 1:
                    found |= _references(value[1])
            else:
                found |= _references(value)
    elif isinstance(node, list):
        for item in node:
            found |= _references(item)
    return found


def thread_local_requests(app_obj: Any) -> None:
    """Give each thread its own ``app.current_request`` (as ``chalice local`` does).

    Chalice keeps the request being handled on the app object: fine in Lambda (one
    request per process at a time), wrong behind a threaded server, where a handler
    can read the headers and body of another request handled meanwhile (a PATCH once
    stored another reviewer's notes, and that reviewer got the 409)."""
    from chalice.local import LocalChalice

    # The swap relies on LocalChalice keeping current_request per thread (its internals).
    require_version("chalice", PINNED_CHALICE, "devstack/launcher.py")
    if not isinstance(app_obj, LocalChalice):
        app_obj.__class__ = type("ThreadLocalChalice", (LocalChalice, type(app_obj)), {})


class TrackingMotoServer:
    """moto's threaded server, with a flag set by every write (for cheap snapshots)."""

    def __init__(self, host: str, port: int) -> None:
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer

        from devstack.moto_patches import require_pinned_moto

        # entry() below replaces the server's private _server_entry and sets _server.
        require_pinned_moto()
        self._inner = ThreadedMotoServer(host, port, verbose=False)
        self.dirty = threading.Event()
        self.write_gate = threading.RLock()
        inner = self._inner
        tracker = self

        def entry() -> None:
            from moto.moto_server.werkzeug_app import (
                DomainDispatcherApplication,
                MotoRequestHandler,
                create_backend_app,
            )
            from werkzeug.serving import make_server

            app = DomainDispatcherApplication(create_backend_app)

            def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
                target = environ.get("HTTP_X_AMZ_TARGET", "")
                method = environ.get("REQUEST_METHOD", "GET")
                if any(target.endswith(op) for op in WRITE_TARGETS) or (
                    not target and method in ("PUT", "POST", "DELETE")
                ):
                    # Writes wait while a snapshot is taken, so every snapshot is a
                    # consistent cut (a job's counters never run ahead of its items).
                    with tracker.write_gate:
                        tracker.dirty.set()
                        return list(app(environ, start_response))
                return app(environ, start_response)

            inner._server = make_server(
                inner._ip_address, inner._port, wrapped, True, request_handler=MotoRequestHandler
            )
            inner._server_ready_event.set()
            inner._server.serve_forever()

        inner._server_entry = entry  # type: ignore[method-assign]

    def start(self) -> int:
        self._inner.start()
        return self._inner.get_host_and_port()[1]

    def stop(self) -> None:
        self._inner.stop()


class LocalStack:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8000,
        data_dir: Path | None = None,
        persist: bool = True,
        snapshot_seconds: float = 3.0,
        llm_env: dict[str, str] | None = None,
        serve_frontend: bool = True,
        quiet: bool = False,
        lambda_workers: int = 0,
        recover_stalled: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.data_dir = Path(data_dir or ROOT / ".data")
        self.persist = persist
        self.snapshot_seconds = snapshot_seconds
        self.llm_env = llm_env or {}
        self.serve_frontend = serve_frontend
        self.quiet = quiet
        # 0: workflow handlers run in this process (tests patch them there); N > 0:
        # in N worker processes, apart from moto as Lambda runtimes are.
        self.lambda_workers = lambda_workers
        # The cloud's scheduled stalled-job check, run on start and on a timer.
        self.recover_stalled = recover_stalled
        self.workers: Any = None
        self.hook: Any = None
        self.moto: TrackingMotoServer | None = None
        self.moto_port = 0
        self.simulator: Any = None
        self.http: ThreadingHTTPServer | None = None
        self.outputs: dict[str, str] = {}
        self.demo_users: tuple[DemoUser, ...] = DEMO_USERS
        self._template: dict[str, Any] = {}
        self._stop = threading.Event()
        self._snapshot_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    def start(self) -> LocalStack:
        # moto's ASL interpreter logs every caught task error with its whole parse tree.
        logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        logging.getLogger("moto.cloudformation").setLevel(logging.ERROR)
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }.items():
            os.environ[key] = value
        os.environ.pop("AWS_PROFILE", None)
        from devstack.moto_patches import freeze_after_full_collections
        from devstack.moto_patches import install as patch_moto

        patch_moto()
        freeze_after_full_collections()
        self.moto = TrackingMotoServer("127.0.0.1", 0)
        self.moto_port = self.moto.start()
        os.environ["MOTO_PORT"] = str(self.moto_port)
        self._moto_config()
        self._provision()
        self._provision_cognito()
        self._start_llm()
        self._configure_app()
        if self.persist:
            self._restore()
            self.moto.dirty.clear()
        self._start_http()
        if self.persist:
            t = threading.Thread(target=self._snapshot_loop, daemon=True, name="snapshot")
            t.start()
            self._threads.append(t)
        if self.recover_stalled:
            t = threading.Thread(target=self._stalled_job_loop, daemon=True, name="stalled-jobs")
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
        if self.workers is not None:
            self.workers.stop()
        if self.persist:
            self.snapshot(force=True)
        if self.simulator is not None:
            self.simulator.stop()
        if self.moto is not None:
            self.moto.stop()
        # The emulator froze what survived full collections; its data may be garbage
        # now (a test's stack): stop freezing and hand everything back to the collector.
        from devstack.moto_patches import stop_freezing

        stop_freezing()

    # ------------------------------------------------------------------ moto
    def _moto_config(self) -> None:
        # moto's backends are process-wide: start from a clean slate each time.
        reset = urllib.request.Request(f"{self.endpoint}/moto-api/reset", data=b"", method="POST")
        urllib.request.urlopen(reset, timeout=30).read()
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/config",
            data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=10).read()

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint)  # type: ignore[call-overload]

    def _provision(self) -> None:
        from infra.build import build_template

        self._template = build_template()
        template = localize_template(self._template)
        cfn = self.client("cloudformation")
        cfn.create_stack(
            StackName=STACK_NAME,
            TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": "Stage", "ParameterValue": STAGE}],
            Capabilities=["CAPABILITY_IAM"],
        )
        stack = cfn.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise RuntimeError(
                f"local stack failed: {stack['StackStatus']} {stack.get('StackStatusReason')}"
            )
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        self._make_state_machine_executable()

    def _provision_cognito(self) -> None:
        """The template's user pool and web client, created in moto's Cognito (its
        CloudFormation cannot make them), plus the demo users. The app then verifies
        moto's ID tokens exactly as it verifies the cloud's: issuer, audience, expiry
        and RS256 signature against the pool's JWKS (served by moto)."""
        resources = self._template["Resources"]
        pool_props = dict(resources["UserPool"]["Properties"])
        client_props = dict(resources["UserPoolClient"]["Properties"])
        pool_props.pop("UserPoolName")
        client_props.pop("UserPoolId")
        client_props.pop("ClientName")
        idp = self.client("cognito-idp")
        pool_id = idp.create_user_pool(PoolName=f"brightrun-{STAGE}", **pool_props)["UserPool"][
            "Id"
        ]
        client_id = idp.create_user_pool_client(
            UserPoolId=pool_id, ClientName=f"brightrun-{STAGE}-web", **client_props
        )["UserPoolClient"]["ClientId"]
        for user in self.demo_users:
            idp.admin_create_user(
                UserPoolId=pool_id,
                Username=user.email,
                UserAttributes=[
                    {"Name": "email", "Value": user.email},
                    {"Name": "email_verified", "Value": "true"},
                    {"Name": "custom:tenant_id", "Value": user.tenant_id},
                ],
                MessageAction="SUPPRESS",
            )
            idp.admin_set_user_password(
                UserPoolId=pool_id, Username=user.email, Password=user.password, Permanent=True
            )
        issuer = f"https://cognito-idp.{REGION}.amazonaws.com/{pool_id}"
        self.outputs.update({"UserPoolId": pool_id, "UserPoolClientId": client_id})
        os.environ.update(
            {
                # AUTH_MODE=none stays available (everyone is DEFAULT_TENANT, no sign-in).
                "AUTH_MODE": os.environ.get("AUTH_MODE") or "cognito",
                "COGNITO_USER_POOL_ID": pool_id,
                "COGNITO_CLIENT_ID": client_id,
                "COGNITO_REGION": REGION,
                "COGNITO_ISSUER": issuer,
                "COGNITO_JWKS_URL": f"{self.endpoint}/{pool_id}/.well-known/jwks.json",
                "LOCAL_DEMO_USERS": json.dumps(
                    [
                        {"email": u.email, "password": u.password, "organisation": u.organisation}
                        for u in self.demo_users
                    ]
                ),
            }
        )

    def _make_state_machine_executable(self) -> None:
        # moto's CloudFormation puts state machines in a store that does not execute;
        # copy the resolved definition into the executing (parser) backend.
        from moto.stepfunctions.models import stepfunctions_backends
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        plain = stepfunctions_backends[ACCOUNT][REGION]
        parser = stepfunctions_parser_backends[ACCOUNT][REGION]
        for sm in list(plain.state_machines):
            if not any(m.name == sm.name for m in parser.state_machines):
                parser.create_state_machine(sm.name, sm.definition, sm.roleArn)
        arns = [m.arn for m in parser.state_machines if m.name.endswith("-generation")]
        self.outputs["StateMachineArn"] = arns[0]

    # ------------------------------------------------------------------ LLM + app
    def _start_llm(self) -> None:
        for k, v in self.llm_env.items():
            os.environ[k] = v
        if os.environ.get("ANTHROPIC_API_KEY") and not os.environ.get("LLM_FORCE_SIMULATOR"):
            return
        from devstack.llm_simulator import LLMSimulator, SimulatorConfig

        self.simulator = LLMSimulator(SimulatorConfig.from_env(os.environ))
        self.simulator.start("127.0.0.1", 0)
        os.environ["ANTHROPIC_BASE_URL"] = self.simulator.url
        os.environ.pop("ANTHROPIC_API_KEY", None)

    def _configure_app(self) -> None:
        os.environ.update(
            {
                "STAGE": STAGE,
                "AWS_ENDPOINT_URL": self.endpoint,
                "TABLE_PREFIX": f"brightrun-{STAGE}",
                "EXPORT_BUCKET": self.outputs["ExportBucketName"],
                "NOTIFICATION_TOPIC_ARN": self.outputs["NotificationTopicArn"],
                "STATE_MACHINE_ARN": self.outputs["StateMachineArn"],
                "APP_BASE_URL": self.url,
                "RUN_EXPORT_FUNCTION": local_function_arn("RunExport"),
                # Bedrock (moto) runs customization jobs with the template's role.
                "FINE_TUNE_ROLE_ARN": self.outputs.get("FineTuneRoleArn", ""),
            }
        )
        from chalicelib.bootstrap import reset_container
        from chalicelib.config import reset_settings

        reset_settings()
        reset_container()

    def _install_hook(self) -> None:
        from devstack import lambda_hook
        from devstack.lambda_workers import LambdaWorkerPool, workflow_handlers

        if self.lambda_workers > 0:
            # Workers inherit the environment: endpoints and the app URL are set by now.
            self.workers = LambdaWorkerPool(self.lambda_workers).start()
            invoke = self.workers.invoke
        else:
            invoke = lambda_hook.in_process(workflow_handlers())
        self.hook = lambda_hook.install(invoke)

    # ------------------------------------------------------------------ HTTP
    def _start_http(self) -> None:
        from chalice.config import Config
        from chalice.local import LocalGateway

        import app as application

        thread_local_requests(application.app)  # requests are handled on threads
        gateway = LocalGateway(
            application.app,
            Config.create(
                chalice_stage="dev", app_name=APP_NAME, lambda_timeout=900, lambda_memory_size=1024
            ),
        )
        dist = ROOT / "frontend" / "dist"
        stack = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:
                if not stack.quiet:
                    log.debug("%s " + fmt, self.address_string(), *args)

            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def send_error(
                self, code: int, message: str | None = None, explain: str | None = None
            ) -> None:
                """The HTTP server's own refusals (a request line or header over its
                limits, a malformed request) in the API's JSON error shape, not HTML."""
                status = HTTPStatus(code)
                body = json.dumps(
                    {
                        "error": {
                            "code": HTTP_ERROR_CODES.get(code, "bad_request"),
                            "message": message or status.phrase,
                            "details": {
                                "max_url_bytes": MAX_URL_BYTES,
                                "max_head_bytes": MAX_HEAD_BYTES,
                            }
                            if code in (414, 431)
                            else {},
                        }
                    }
                ).encode()
                self.log_error("code %d, message %s", code, message)
                # An unparsable request line leaves HTTP/0.9, whose answers have no
                # status line or headers: no client of this API would understand that.
                if self.request_version == "HTTP/0.9":
                    self.request_version = "HTTP/1.0"
                # The status line carries the standard phrase only: ``message`` may
                # quote the request.
                self.send_response(code, status.phrase)
                self.send_header("Connection", "close")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                self.close_connection = True

            def _over_limits(self) -> bool:
                """Refuses (and says so) a URL or head over what the cloud accepts."""
                url_bytes = len(self.path.encode("latin-1", "replace"))
                if url_bytes > MAX_URL_BYTES:
                    self.send_error(
                        414, f"the URL is {url_bytes} bytes; the limit is {MAX_URL_BYTES}"
                    )
                    return True
                head_bytes = (
                    len(self.requestline)
                    + 2
                    + sum(len(k) + len(v) + 4 for k, v in self.headers.items())
                )
                if head_bytes > MAX_HEAD_BYTES:
                    self.send_error(
                        431,
                        f"the request line and headers are {head_bytes} bytes; "
                        f"the limit is {MAX_HEAD_BYTES}",
                    )
                    return True
                return False

            def _api(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    response = gateway.handle_request(self.command, self.path, headers, body)
                except Exception as e:
                    code = getattr(e, "CODE", 500)
                    status = 404 if code == 403 else code
                    err: dict[str, Any] = {
                        "error": {
                            "code": "not_found" if status == 404 else "error",
                            "message": f"no route for {self.command} {urlsplit(self.path).path}",
                            "details": {},
                        }
                    }
                    self._send(
                        status, {"Content-Type": "application/json"}, json.dumps(err).encode()
                    )
                    return
                status = int(response["statusCode"])
                resp_headers = dict(response.get("headers") or {})
                raw = response.get("body") or b""
                data = raw.encode() if isinstance(raw, str) else raw
                if status >= 400 and b'"error"' not in data[:20]:
                    # Chalice's own errors (405, 415...): same shape as the API's.
                    try:
                        message = json.loads(data).get("Message") or data.decode()
                    except (ValueError, AttributeError):
                        message = data.decode(errors="replace")
                    code = {405: "method_not_allowed", 415: "unsupported_media_type"}.get(
                        status, "error"
                    )
                    data = json.dumps(
                        {"error": {"code": code, "message": message, "details": {}}}
                    ).encode()
                    resp_headers["Content-Type"] = "application/json"
                self._send(status, resp_headers, data)

            def _static(self) -> None:
                path = urlsplit(self.path).path
                target = (dist / path.lstrip("/")).resolve()
                if not str(target).startswith(str(dist.resolve())) or not target.is_file():
                    target = dist / "index.html"
                if not target.is_file():
                    msg = b"<h1>Bright Run Conversation Studio</h1><p>The frontend is not built: run <code>make dev</code> (it builds frontend/).</p>"
                    self._send(200, {"Content-Type": "text/html"}, msg)
                    return
                ctype = mimetypes.guess_type(str(target))[0] or "application/octet-stream"
                cache = (
                    "no-cache"
                    if target.name == "index.html"
                    else "public, max-age=31536000, immutable"
                )
                self._send(
                    200, {"Content-Type": ctype, "Cache-Control": cache}, target.read_bytes()
                )

            def _dispatch(self) -> None:
                if self._over_limits():
                    return
                if urlsplit(self.path).path.startswith("/api"):
                    self._api()
                elif self.command in ("GET", "HEAD") and stack.serve_frontend:
                    self._static()
                else:
                    self._send(
                        404,
                        {"Content-Type": "application/json"},
                        b'{"error": {"code": "not_found", "message": "not found", "details": {}}}',
                    )

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

        ThreadingHTTPServer.daemon_threads = True
        self.http = ThreadingHTTPServer((self.host, self.port), Handler)
        self.port = self.http.server_address[1]
        os.environ["APP_BASE_URL"] = self.url
        from chalicelib.config import reset_settings

        reset_settings()
        from chalicelib.bootstrap import reset_container

        reset_container()
        # Lambda runtimes before the first request: a job started the moment the API
        # answers must find them. They inherit the environment, now complete.
        self._install_hook()
        t = threading.Thread(target=self.http.serve_forever, daemon=True, name="http")
        t.start()
        self._threads.append(t)

    # ------------------------------------------------------------------ persistence
    def _tables(self) -> list[str]:
        prefix = f"brightrun-{STAGE}-"
        names = self.client("dynamodb").list_tables()["TableNames"]
        return [n for n in names if n.startswith(prefix)]

    def snapshot(self, force: bool = False) -> bool:
        if self.moto is None or (not force and not self.moto.dirty.is_set()):
            return False
        from moto.dynamodb.models import dynamodb_backends

        with self._snapshot_lock, self.moto.write_gate:
            self.moto.dirty.clear()
            backend = dynamodb_backends[ACCOUNT][REGION]
            tmp = self.data_dir.with_name(self.data_dir.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            (tmp / "tables").mkdir(parents=True)
            for name in self._tables():
                table = backend.tables[name]
                with open(tmp / "tables" / f"{name}.jsonl", "w") as fh:
                    for item in list(table.all_items()):
                        fh.write(json.dumps(item.to_json()["Attributes"]) + "\n")
            s3 = self.client("s3")
            bucket = self.outputs["ExportBucketName"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for obj in page.get("Contents", []):
                    head = s3.get_object(Bucket=bucket, Key=obj["Key"])
                    target = tmp / "s3" / obj["Key"]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(head["Body"].read())
                    meta = {
                        "ContentType": head.get("ContentType"),
                        "ContentDisposition": head.get("ContentDisposition"),
                    }
                    target.with_name(target.name + ".meta.json").write_text(json.dumps(meta))
            old = self.data_dir.with_name(self.data_dir.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            if self.data_dir.exists():
                self.data_dir.rename(old)
            tmp.rename(self.data_dir)
            shutil.rmtree(old, ignore_errors=True)
        return True

    def _restore(self) -> None:
        tables_dir = self.data_dir / "tables"
        if not tables_dir.is_dir():
            old = self.data_dir.with_name(self.data_dir.name + ".old")
            if (old / "tables").is_dir():  # a crash between the two renames
                tables_dir = old / "tables"
            else:
                return
        ddb = self.client("dynamodb")
        restored = 0
        for path in sorted(tables_dir.glob("*.jsonl")):
            name = path.stem
            batch: list[dict[str, Any]] = []
            with open(path) as fh:
                for line in fh:
                    batch.append({"PutRequest": {"Item": json.loads(line)}})
                    if len(batch) == 25:
                        ddb.batch_write_item(RequestItems={name: batch})
                        restored += len(batch)
                        batch = []
            if batch:
                ddb.batch_write_item(RequestItems={name: batch})
                restored += len(batch)
        s3_dir = tables_dir.parent / "s3"
        if s3_dir.is_dir():
            s3 = self.client("s3")
            bucket = self.outputs["ExportBucketName"]
            for f in s3_dir.rglob("*"):
                if f.is_file() and not f.name.endswith(".meta.json"):
                    meta_file = f.with_name(f.name + ".meta.json")
                    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
                    extra = {k: v for k, v in meta.items() if v}
                    s3.put_object(
                        Bucket=bucket, Key=str(f.relative_to(s3_dir)), Body=f.read_bytes(), **extra
                    )
        if not self.quiet:
            print(f"  restored {restored} items from {self.data_dir}")

    def check_stalled_jobs(self, grace_seconds: float | None = None) -> dict[str, Any]:
        """Invoke the ``recover_stalled_jobs`` Lambda, as the cloud's schedule does."""
        payload: dict[str, Any] = {}
        if grace_seconds is not None:
            payload["grace_seconds"] = grace_seconds
        import boto3
        from botocore.config import Config

        # One attempt, waited for as long as a Lambda may run: the schedule does not
        # retry a check that is merely slow (the next tick is the retry).
        client = boto3.client(
            "lambda",
            region_name=REGION,
            endpoint_url=self.endpoint,
            config=Config(read_timeout=900, retries={"total_max_attempts": 1}),
        )
        response = client.invoke(
            FunctionName=local_function_arn("RecoverStalledJobs"),
            Payload=json.dumps(payload).encode(),
        )
        result: dict[str, Any] = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError"):
            raise RuntimeError(f"stalled-job check failed: {result}")
        return result

    def _stalled_job_loop(self) -> None:
        from chalicelib.config import get_settings

        # At start nothing from before can be running (executions do not survive a
        # restart): jobs left active by a crash or a kill are resumed at once.
        first: float | None = 0.0
        interval = max(1.0, get_settings().stalled_check_seconds)
        while True:
            try:
                result = self.check_stalled_jobs(first)
                if result.get("recovered") and not self.quiet:
                    print(f"  resumed stalled jobs: {result['recovered']}", flush=True)
            except Exception:
                log.exception("stalled-job check failed")
            first = None
            if self._stop.wait(interval):
                return

    def _snapshot_loop(self) -> None:
        while not self._stop.wait(self.snapshot_seconds):
            try:
                self.snapshot()
            except Exception:
                log.exception("snapshot failed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Bright Run Conversation Studio locally")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument(
        "--data-dir", default=os.environ.get("BRIGHTRUN_DATA_DIR", str(ROOT / ".data"))
    )
    parser.add_argument("--no-persist", action="store_true")
    parser.add_argument(
        "--lambda-workers",
        type=int,
        default=int(os.environ.get("LOCAL_LAMBDA_WORKERS", "1")),
        help="processes that run the workflow Lambdas (0: in the launcher's process)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("brightrun.local").setLevel(logging.INFO)
    stack = LocalStack(
        args.host,
        args.port,
        Path(args.data_dir),
        persist=not args.no_persist,
        lambda_workers=args.lambda_workers,
    )
    # Handled from the start: a Ctrl-C while starting still stops cleanly once up.
    done = threading.Event()

    def shutdown(signum: int, frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    print("Starting Bright Run Conversation Studio (local stack)...")
    stack.start()
    llm = (
        f"Offline Messages-API SIMULATOR at {stack.simulator.url} (no ANTHROPIC_API_KEY set: "
        "conversations are simulated, not written by Claude)"
        if stack.simulator
        else "Claude via the Anthropic API (ANTHROPIC_API_KEY is set)"
    )
    if os.environ.get("AUTH_MODE") == "none":
        sign_in = "not needed (AUTH_MODE=none: everyone is the default tenant)"
    else:
        sign_in = "Cognito (moto) demo users, one tenant each:" + "".join(
            f"\n                 {u.email} / {u.password}  ({u.organisation}, {u.tenant_id})"
            for u in stack.demo_users
        )
    runtimes = (
        f"{stack.lambda_workers} worker process{'es' if stack.lambda_workers > 1 else ''} "
        f"(pids {', '.join(map(str, stack.workers.pids))})"
        if stack.workers
        else "in the launcher's process"
    )
    print(
        f"""
  Bright Run Conversation Studio is running.

    Open:      {stack.url}
    API:       {stack.url}/api/health   (OpenAPI: {stack.url}/api/openapi.json)
    LLM:       {llm}
    AWS:       moto at {stack.endpoint} (tables, bucket, topic, state machine from infra/template.json)
    Lambdas:   {runtimes}
    Data:      {stack.data_dir} (kept across restarts)
    Sign in:   {sign_in}

  Press Ctrl-C to stop.
""",
        flush=True,
    )
    while not done.wait(0.5):
        pass
    print("\nStopping: saving data...", flush=True)
    stack.stop()
    print("Stopped. Your data is saved.", flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    time.sleep(0)
    raise SystemExit(main())
