"""Writing a table's rows to a CSV or Parquet file that appears whole or not at all.

Both warehouses hand over Arrow record batches; pyarrow writes them, so memory holds one batch
and no database ever writes a file itself.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from typing import Any

from leadferry.errors import ConfigError, StorageError


def check_export(fmt: str, output: Path) -> None:
    """Refuse an unknown format or an *output* that is not a regular file; make its folder.

    Raises:
        ConfigError: what is wrong, in one line.
    """
    if fmt not in ("csv", "parquet"):
        raise ConfigError(f"unknown export format {fmt!r}: use csv or parquet")
    _check_output(output)


def write_export(batches: Any, fmt: str, output: Path) -> int:
    """Write Arrow *batches* (with a ``schema``) to *output*; return the row count.

    The rows go to a hidden file beside *output*, renamed over it once complete: *output* is
    either untouched or whole, and no partial file is left behind on a failure, a full disk or
    Ctrl-C.

    Raises:
        StorageError: writing failed (a full disk...); nothing was written.
    """
    partial = output.with_name(f".{output.name}.{secrets.token_hex(4)}.partial")
    try:
        rows = _write_batches(batches, fmt, partial)
        partial.replace(output)
    except OSError as exc:
        # pyarrow's own words wrap the system's: "Error writing bytes... [errno 28]".
        reason = os.strerror(exc.errno) if exc.errno else str(exc).strip().split("\n")[0]
        raise StorageError(f"cannot write {output}: {reason}; nothing was written") from None
    finally:
        partial.unlink(missing_ok=True)
    return rows


def _write_batches(batches: Any, fmt: str, path: Path) -> int:
    """Write a pyarrow RecordBatchReader to *path* as CSV or Parquet; return the rows written."""
    import pyarrow.csv
    import pyarrow.parquet

    rows = 0
    writer: Any
    if fmt == "csv":
        writer = pyarrow.csv.CSVWriter(
            str(path),
            batches.schema,
            write_options=pyarrow.csv.WriteOptions(quoting_header="none"),
        )
    else:
        writer = pyarrow.parquet.ParquetWriter(str(path), batches.schema)
    with writer:
        for batch in batches:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def _check_output(output: Path) -> None:
    """Refuse an export target that is not a regular file, and make its folder."""
    try:
        found = output.stat()
    except FileNotFoundError:
        found = None
    except OSError as exc:
        raise ConfigError(f"cannot write {output}: {exc.strerror}") from None
    if found is not None and stat.S_ISDIR(found.st_mode):
        raise ConfigError(f"{output} is a folder: name a file to write, e.g. {output / 'export'}")
    if found is not None and not stat.S_ISREG(found.st_mode):
        raise ConfigError(
            f"{output} exists and is not a regular file (a device, pipe or socket): "
            "name a regular file to write"
        )
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot make the folder {output.parent}: {exc.strerror}") from None
