"""Structured logs, metrics and traces for the Lambdas (Powertools), inert locally.

Nothing happens at import time: neither Powertools nor the environment is touched until
``get_observability()`` is first called, and what it builds is kept for the process
(``reset_observability()`` rebuilds it, for tests).

- In Lambda (``AWS_LAMBDA_FUNCTION_NAME`` is set by the runtime) every workflow handler
  wrapped by ``workflow_handler`` runs under ``Tracer.capture_lambda_handler`` (X-Ray
  subsegment ``## <handler>``, cold-start annotation, boto3/requests patched),
  ``Metrics.log_metrics`` (CloudWatch EMF, flushed when the handler returns or raises,
  plus a ColdStart metric) and ``Logger.inject_lambda_context`` (JSON logs with the
  request id; keys appended by the handler, such as tenant_id/job_id/conversation_id,
  are cleared per invocation so a warm container never leaks the previous tenant's).
  Names come from the template's environment: POWERTOOLS_SERVICE_NAME,
  POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_LOG_LEVEL.
- Locally (launcher, tests) the wrapper calls the handler directly: the Tracer is built
  disabled (it patches nothing), ``count``/``measure`` record nothing (no EMF blobs on
  stdout, no shared metric set growing), and the logger logs at WARNING unless
  POWERTOOLS_LOG_LEVEL says otherwise.
"""

from __future__ import annotations

import functools
import os
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "conversation-studio"
NAMESPACE = "BrightRun"

Event = dict[str, Any]
Handler = Callable[[Event], Event]
LambdaHandler = Callable[[Event, Any], Event]


def running_in_lambda(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return bool(env.get("AWS_LAMBDA_FUNCTION_NAME"))


@dataclass(frozen=True)
class Observability:
    logger: Logger
    metrics: Metrics
    tracer: Tracer
    in_lambda: bool

    def count(self, name: str, value: float = 1) -> None:
        """Adds to a Count metric of this invocation (flushed by ``workflow_handler``)."""
        if self.in_lambda and value:
            from aws_lambda_powertools.metrics import MetricUnit

            self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)

    def measure(self, name: str, value: float) -> None:
        """A dimensionless metric (e.g. CostUSD: CloudWatch has no currency unit)."""
        if self.in_lambda:
            from aws_lambda_powertools.metrics import MetricUnit

            self.metrics.add_metric(name=name, unit=MetricUnit.NoUnit, value=value)


def build_observability(env: Mapping[str, str] | None = None) -> Observability:
    from aws_lambda_powertools import Logger, Metrics, Tracer

    env = os.environ if env is None else env
    in_lambda = running_in_lambda(env)
    service = env.get("POWERTOOLS_SERVICE_NAME") or SERVICE
    level = env.get("POWERTOOLS_LOG_LEVEL") or ("INFO" if in_lambda else "WARNING")
    if in_lambda:  # steps without a metric of their own are normal, not worth a warning
        warnings.filterwarnings("ignore", message="No application metrics to publish")
    return Observability(
        logger=Logger(service=service, level=level),
        metrics=Metrics(
            namespace=env.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE, service=service
        ),
        # Locally: disabled outright. In Lambda: None lets Powertools decide (on unless
        # POWERTOOLS_TRACE_DISABLED, or an emulator such as `chalice local`/SAM local).
        tracer=Tracer(service=service, disabled=None if in_lambda else True, auto_patch=in_lambda),
        in_lambda=in_lambda,
    )


_observability: Observability | None = None
_lock = threading.Lock()


def get_observability() -> Observability:
    global _observability
    if _observability is None:
        with _lock:
            if _observability is None:
                _observability = build_observability()
    return _observability


def reset_observability() -> None:
    global _observability
    with _lock:
        _observability = None


def workflow_handler(fn: Handler) -> Callable[..., Event]:
    """Wraps a ``handler(event)``: in Lambda traced, with metrics flushed and logs keyed."""
    instrumented: dict[bool, LambdaHandler] = {}

    @functools.wraps(fn)
    def run(event: Event, context: Any = None) -> Event:
        obs = get_observability()
        if not obs.in_lambda:
            return fn(event)
        with_context = context is not None
        handler = instrumented.get(with_context)
        if handler is None:
            handler = _instrument(fn, obs, with_context)
            instrumented[with_context] = handler
        return handler(event, context)

    return run


def _instrument(fn: Handler, obs: Observability, with_context: bool) -> LambdaHandler:
    def handler(event: Event, context: Any) -> Event:
        if not with_context:  # inject_lambda_context(clear_state=True) does it otherwise
            obs.logger.clear_state()
        return fn(event)

    handler.__name__ = handler.__qualname__ = fn.__name__
    wrapped: LambdaHandler = handler
    if with_context:  # the Lambda context carries the request id and function name
        wrapped = obs.logger.inject_lambda_context(wrapped, clear_state=True)
    wrapped = obs.metrics.log_metrics(wrapped, capture_cold_start_metric=with_context)
    return obs.tracer.capture_lambda_handler(wrapped)
