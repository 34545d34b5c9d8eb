"""The one place where `pluresdb_lab.errors` classes become HTTP status codes.

An error reply is JSON `{"error": <class name>, "message": <text>}`; `RemoteDatabase`
raises the class of that name again, so a remote call fails exactly like a local one.
"""

from __future__ import annotations

from tornado import web

from pluresdb_lab import errors

STATUS: dict[type[errors.PluresDBError], int] = {
    errors.NotFoundError: 404,
    errors.InvalidIdError: 400,
    errors.InvalidDataError: 400,
    errors.InvalidOpError: 400,
    errors.BackupError: 400,
    errors.MeshError: 400,
    errors.PeerRefusedError: 403,
    errors.PathNotAllowedError: 403,
    errors.ReadOnlyError: 409,
    errors.DatabaseLockedError: 409,
    errors.OperationCancelled: 409,
    errors.DatabaseClosedError: 503,
    errors.NotADatabaseError: 400,
    errors.StorageFullError: 507,
    errors.CorruptDatabaseError: 500,
}


def status_of(exc: errors.PluresDBError) -> int:
    """The status of the most specific class of `exc` in STATUS (500 when none is)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


class ApiError(web.HTTPError):
    """An HTTP error whose JSON body names the `pluresdb_lab.errors` class to raise."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(status, log_message=message.replace("%", "%%"))
        self.error = error
        self.message = message

    @classmethod
    def of(cls, exc: errors.PluresDBError) -> ApiError:
        return cls(status_of(exc), type(exc).__name__, str(exc))


def bad_request(message: str) -> ApiError:
    """A malformed request body or parameter: 400, raised as InvalidDataError remotely."""
    return ApiError(400, "InvalidDataError", message)


def error_body(status_code: int, exc: BaseException | None, reason: str) -> dict[str, str]:
    """The JSON body of an error reply: the `pluresdb_lab.errors` class name and a message."""
    if isinstance(exc, ApiError):
        return {"error": exc.error, "message": exc.message}
    if isinstance(exc, web.HTTPError):
        error = "InvalidDataError" if status_code == 400 else "HTTPError"
        return {"error": error, "message": exc.log_message or reason}
    return {"error": "ServerError", "message": f"{type(exc).__name__}: {exc}"}
