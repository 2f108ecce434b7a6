"""Errors services raise; the API maps each to one HTTP status and the one error shape."""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    code = "bad_request"
    extra: dict | None = None  # more members of the error object (e.g. possible_duplicates)

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class Gone(ServiceError):
    """Existed, and was dropped on purpose (e.g. a compacted campaign's per-recipient detail)."""

    status = 410
    code = "gone"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class PossibleDuplicates(Conflict):
    """Qualify would create an account while likely duplicates exist (409)."""

    code = "possible_duplicates"

    def __init__(self, message: str, candidates: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.extra = {"possible_duplicates": candidates}


class Invalid(ServiceError):
    """Validation failed (422); ``fields`` says where."""

    status = 422
    code = "validation_failed"


class RateLimited(ServiceError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(ServiceError):
    """Not done, and not the client's fault: try again in ``retry_after`` seconds (503)."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after
