"""Every error leadferry raises on purpose.

The tree says what to do next (after the Singer SDK's recovery-intent classes)::

    LeadferryError                 root; the CLI prints its message on one line
    ├── ConfigError                bad settings, account, dataset or input: fix it, never retry
    │   ├── InvalidWindowError     a date selection that cannot be resolved
    │   ├── NotFoundError          an account, dataset, report or connector that does not exist
    │   └── ConflictError          a name already taken, an account still in use
    ├── LoadError                  the warehouse refused the data (disk full, type conflict)
    ├── StorageError               a file it keeps cannot be read or written (corrupt, disk full)
    ├── QueryTimeoutError          a read of the warehouse ran out of time and was cancelled
    ├── RunCancelledError          someone stopped the run: nothing to retry
    ├── BusyError                  the dataset is running or the warehouse is locked: retry later
    │   ├── AccountBusyError       the account already has its most runs at once: run it later
    │   └── DuplicateJobError      a queue delivered a job twice: its run exists, drop this one
    └── ConnectorError             a vendor call failed
        ├── RetryableAPIError      429, 5xx, timeouts, dropped connections, truncated bodies
        └── FatalAPIError          other 4xx and malformed answers: retrying will not help
            └── AuthError          the stored credential was rejected

Messages never contain a secret: URLs are shown without their query string.
"""

from __future__ import annotations


class LeadferryError(Exception):
    """Root of every error leadferry raises on purpose."""


class ConfigError(LeadferryError):
    """Bad settings, account, dataset or input. Fix the input; never retry."""


class InvalidWindowError(ConfigError):
    """A date selection that cannot be resolved to a window."""


class NotFoundError(ConfigError):
    """A named thing (account, dataset, report, connector) does not exist."""


class ConflictError(ConfigError):
    """A name is already taken, or a thing is still in use."""


class LoadError(LeadferryError):
    """The warehouse refused the data; the previous tables are left as they were."""


class StorageError(LeadferryError):
    """A file leadferry keeps (warehouse, store, export) cannot be read or written."""


class QueryTimeoutError(LeadferryError):
    """A read of the warehouse ran longer than its timeout and was cancelled."""


class RunCancelledError(LeadferryError):
    """Someone asked the run to stop (Cancel on its dataset's page); it is not retried."""


class BusyError(LeadferryError):
    """Something is running or locked right now; try again later."""


class AccountBusyError(BusyError):
    """The dataset's account already runs as many datasets as it may at once."""


class DuplicateJobError(BusyError):
    """A queued job was delivered again after its run had been claimed: nothing to do."""


class ConnectorError(LeadferryError):
    """A vendor call failed."""


class RetryableAPIError(ConnectorError):
    """A failure that may pass: 429, 5xx, timeouts, dropped connections, truncated answers."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FatalAPIError(ConnectorError):
    """A failure that retrying will not fix: other 4xx, malformed answers."""


class AuthError(FatalAPIError):
    """The vendor rejected the account's credentials."""


def first_line(exc: BaseException) -> str:
    """The first line of *exc*'s message (a database's hints and context left out), or its
    class's name when it has none: how an error of a library is told in one line."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
