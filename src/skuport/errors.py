"""Domain errors: one base class, one handler turns them into the error envelope."""

from __future__ import annotations

from typing import Any


class SkuportError(Exception):
    """Something went wrong."""

    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: list[Any] | None = None,
        code: str | None = None,
        status_code: int | None = None,
    ) -> None:
        self.message = message or (self.__doc__ or "Error").strip()
        self.details = details or []
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        super().__init__(self.message)

    def envelope(self) -> dict[str, Any]:
        """The JSON body every error response carries."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(SkuportError):
    """The request is malformed."""


class Unauthorized(SkuportError):
    """Authentication is required."""

    status_code = 401
    code = "unauthorized"


class Forbidden(SkuportError):
    """Your role does not allow this action."""

    status_code = 403
    code = "forbidden"


class NotFound(SkuportError):
    """The resource does not exist."""

    status_code = 404
    code = "not_found"


class Conflict(SkuportError):
    """The request conflicts with the current state."""

    status_code = 409
    code = "conflict"


class PayloadTooLarge(SkuportError):
    """The request is too large."""

    status_code = 413
    code = "payload_too_large"


class ValidationFailed(SkuportError):
    """The request is not valid."""

    status_code = 422
    code = "validation_error"


class TooManyRequests(SkuportError):
    """Too many requests."""

    status_code = 429
    code = "too_many_requests"


def not_found(kind: str, ident: str) -> NotFound:
    """A 404 naming the kind and the id that was not found."""
    return NotFound(f"{kind} '{ident}' was not found.")


class WorkStopped(Exception):
    """Background work may not go on: cancelled, timed out, or no longer owned by this process.

    Not a :class:`SkuportError` on purpose: no handler turns it into a response, and a destination's
    ``except Exception`` that wraps failures must let it through (it is raised before a visible step).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
