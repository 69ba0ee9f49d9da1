"""One line for a failure leadferry did not raise on purpose: a full disk, a corrupt store or
warehouse, a bad setting in the environment, or a bug. ``--debug`` shows the traceback instead.

The exception types of DuckDB, SQLAlchemy and pydantic are looked up only if their module was
imported: an error cannot come from a module that never loaded, and the CLI starts faster
without them.
"""

from __future__ import annotations

import errno
import sys
from typing import TYPE_CHECKING, Any

from leadferry.errors import ConfigError, LeadferryError, first_line
from leadferry.scrub import scrub

if TYPE_CHECKING:
    from leadferry.settings import Settings

_CORRUPT = ("not a database", "malformed", "not a valid duckdb", "corrupt", "checksum")


def error_line(exc: Exception) -> tuple[str, int]:
    """What the CLI prints after ``error:`` for *exc*, and the exit status (2 bad input, 1 failed
    work): leadferry's own errors say it themselves, scrubbed of secrets; the rest as
    :func:`describe` says."""
    if isinstance(exc, LeadferryError):
        return scrub(str(exc)), 2 if isinstance(exc, ConfigError) else 1
    return describe(exc)


def describe(exc: BaseException) -> tuple[str, int]:
    """The line to print for *exc* and the exit status (2 bad input, 1 failed work).

    A wrapper (dlt's PipelineStepFailed, say) is described by the file or database error it
    wraps, when it wraps one.
    """
    exc = _storage_cause(exc) or exc
    if _is(exc, "pydantic_core", "ValidationError"):
        return _bad_setting(exc), 2
    if isinstance(exc, OSError):
        return _os_error(exc), 1
    if _is(exc, "sqlalchemy.exc", "DBAPIError"):
        return _store_error(exc), 1
    if _is(exc, "duckdb", "Error"):
        return _warehouse_error(exc), 1
    return (
        f"unexpected {type(exc).__name__}: {first_line(exc)} "
        "(run again with --debug for the traceback, and please report it)",
        1,
    )


def storage_failure(exc: BaseException) -> str | None:
    """The line for *exc* when a file or database error is behind it (a full disk, a corrupt
    warehouse), else None: a run records it as its error, which a bare exception name is not."""
    cause = _storage_cause(exc)
    return None if cause is None else describe(cause)[0]


def _storage_cause(exc: BaseException) -> BaseException | None:
    seen: BaseException | None = exc
    while seen is not None:
        if (
            isinstance(seen, OSError)
            or _is(seen, "sqlalchemy.exc", "DBAPIError")
            or _is(seen, "duckdb", "Error")
        ):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _is(exc: BaseException, module: str, name: str) -> bool:
    loaded = sys.modules.get(module)
    kind = getattr(loaded, name, None) if loaded is not None else None
    return isinstance(kind, type) and isinstance(exc, kind)


def _bad_setting(exc: Any) -> str:
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    name = f"LEADFERRY_{field.upper()}" if field else "a LEADFERRY_ setting"
    return f"{name} in the environment: {error['msg']}; fix it or unset it"


def _os_error(exc: OSError) -> str:
    where = exc.filename or _home()
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the disk of {where}: free some space and try again"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write or read {where}: {exc.strerror}; check its permissions"
    return f"{exc.strerror or first_line(exc)}: {where}"


def _store_error(exc: Any) -> str:
    reason = first_line(exc.orig if exc.orig is not None else exc)
    return _database_error("metadata store", _store_name(), reason, "to start afresh")


def _warehouse_error(exc: BaseException) -> str:
    found = _settings_or_none()
    path = found.warehouse_path if found else "warehouse.duckdb"
    return _database_error("warehouse", path, first_line(exc), "and run your datasets again")


def _database_error(kind: str, where: object, reason: str, afresh: str) -> str:
    if "full" in reason or "space left" in reason:
        return f"the {kind} {where} cannot be written ({reason}): free some space"
    if any(word in reason.lower() for word in _CORRUPT):
        return (
            f"the {kind} {where} is unreadable ({reason}): restore it from a backup, or move "
            f"it aside {afresh}"
        )
    return f"the {kind} {where} failed: {reason}"


def _store_name() -> str:
    """Where the store is, without a password: its file for SQLite."""
    from sqlalchemy.engine import make_url

    found = _settings_or_none()
    if found is None:
        return "(LEADFERRY_STORE_URL)"
    url = make_url(found.metadata_url)
    if url.get_backend_name() == "sqlite":
        return str(url.database)
    return url.render_as_string(hide_password=True)


def _home() -> str:
    found = _settings_or_none()
    return str(found.home) if found else "$LEADFERRY_HOME"


def _settings_or_none() -> Settings | None:
    from leadferry.settings import Settings  # a mistake of the user's needs no settings

    try:
        return Settings()
    except Exception:  # a bad setting is reported on its own; here it only names a place
        return None
