"""API errors: an HTTP status, a stable code, a message naming the field and the rule.

Pages translate `code` into the person's language; the JSON API gives the English message,
which is what platform engineers and client developers read.
"""

from __future__ import annotations


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None,
                 status: int | None = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code or self.code
        self.status = status or self.status
        self.retry_after = retry_after

    def body(self) -> dict[str, object]:
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        if self.retry_after is not None:
            error["retry_after"] = self.retry_after
        return {"error": error}


class InvalidField(ApiError):
    status = 422
    code = "invalid_field"


class WrongCredentials(ApiError):
    """Unknown case number and wrong PIN look exactly alike."""

    status = 401
    code = "case_or_pin_wrong"

    def __init__(self) -> None:
        super().__init__("No case matches this case number and PIN. Check both and try again.")


class Locked(ApiError):
    status = 429
    code = "locked"

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, round(retry_after / 60))
        super().__init__(
            f"Too many wrong PINs for this case number. Try again in about {minutes} minutes.",
            retry_after=retry_after,
        )


class Conflict(ApiError):
    status = 409
    code = "conflict"
