"""Errors are types (design rule 4, docs/architecture.md): the API maps them to HTTP status by class.

Workflow task errors carry distinct class names because the ASL ``Retry``/``Catch``
clauses match on the Lambda's ``errorType``, which is the exception class name.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base for every error a caller can cause or should see."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class ValidationError(DomainError):
    status_code = 400
    code = "validation_error"


class UnprocessableError(DomainError):
    status_code = 422
    code = "unprocessable"


class NotFoundError(DomainError):
    status_code = 404
    code = "not_found"

    def __init__(self, entity: str, entity_id: str) -> None:
        super().__init__(
            f"{entity} '{entity_id}' was not found", {"entity": entity, "id": entity_id}
        )


class ConflictError(DomainError):
    status_code = 409
    code = "conflict"


class StaleVersionError(ConflictError):
    """Optimistic lock lost: the caller edited an older version."""

    code = "stale_version"


class DatasetArchivedError(ConflictError):
    """The dataset is archived: read-only until it is unarchived."""

    code = "dataset_archived"


class ConfirmationRequiredError(ValidationError):
    """A destructive call sent without ``confirm: true``: nothing was changed; the
    details say what it would do."""

    code = "confirmation_required"


class NoteRequiredError(ValidationError):
    """A reject without a note on a dataset that requires one."""

    code = "note_required"


class BulkLimitExceededError(ValidationError):
    """A filter matches more conversations than one bulk call may act on."""

    code = "bulk_limit_exceeded"


class MatchesChangedError(ConflictError):
    """The filter no longer matches the count the caller confirmed."""

    code = "matches_changed"


class BudgetExceededError(ConflictError):
    code = "over_budget"


class PayloadTooLargeError(DomainError):
    status_code = 413
    code = "payload_too_large"


class UnauthorizedError(DomainError):
    status_code = 401
    code = "unauthorized"


class RateLimitedError(DomainError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, {"retry_after_seconds": round(retry_after, 1)})
        self.retry_after = retry_after


class ExportFailedError(DomainError):
    """An export that was accepted and recorded, then failed while it was written on the
    request path (storage or an unexpected error): ``details.export_id`` names the failed
    export record, whose ``error_message`` says why."""

    status_code = 500
    code = "export_failed"


class PromptTemplateError(ValidationError):
    """A template references a placeholder that has no value, or vice versa."""

    code = "template_error"


# --------------------------------------------------------------------------- workflow errors
# Names below appear in statemachines/generation.asl.json; rename both together.


class TransientGenerationError(Exception):
    """Worth retrying: provider throttling/overload, timeouts, 5xx."""


class ProviderRateLimitError(TransientGenerationError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderOverloadedError(TransientGenerationError):
    """529: the provider is overloaded (a refusal, like a 429, that the back-off counts)."""


class PermanentGenerationError(Exception):
    """Retrying will not help: bad request, malformed or truncated answer, auth."""


class MalformedResponseError(PermanentGenerationError):
    pass


class OutsideServiceError(Exception):
    """An outside service's adapter could not complete a call (refused, throttled,
    unreachable); the message is the service's reason. The service decides what the
    caller sees (e.g. a stored failure, or an UpstreamServiceError)."""


class UpstreamServiceError(DomainError):
    """A cloud service the request depends on refused or failed it (e.g. Bedrock would
    not start a model customization job); the message carries the service's reason."""

    status_code = 502
    code = "upstream_error"
