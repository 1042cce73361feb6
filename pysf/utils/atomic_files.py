"""Files that are either fully written or not there: the one way pysf writes checkpoints, config.json and
result.json.

The data goes to a hidden temporary file in the destination's folder, is flushed to disk, and replaces the
destination with ``os.replace`` (atomic on POSIX). A failed write (disk full, quota, read-only folder) leaves
the previous file untouched, removes the temporary file, and raises :class:`FileWriteError` with one readable
line instead of a library's internal message.
"""

from __future__ import annotations

import errno
import os
import tempfile
from typing import Callable, IO, Union

__all__ = ["FileWriteError", "write_atomically"]

_UMASK = os.umask(0)  # read once (os.umask can only be read by setting it)
os.umask(_UMASK)


class FileWriteError(OSError):
    """Writing a file failed; ``str()`` is one line naming the file, what it is and why (e.g. the disk is full)."""

    def __init__(self, what: str, path: str, cause: OSError, consequence: str = ""):
        reason = cause.strerror or str(cause)
        if cause.errno in (errno.ENOSPC, errno.EDQUOT):
            reason = f"{reason} (the disk or quota is full)"
        super().__init__(cause.errno, f"{reason} while writing {what} {path}" + (f"; {consequence}" if consequence else ""))
        self.what = what
        self.path = path
        self.cause = cause

    def with_consequence(self, consequence: str) -> "FileWriteError":
        """The same error, its message extended with what it means for the caller's data."""
        return FileWriteError(self.what, self.path, self.cause, consequence)

    def __str__(self) -> str:
        return self.strerror or ""


def write_atomically(path: str, data: Union[bytes, bytearray, memoryview, Callable[[IO], None]], what: str,
                     text: bool = False) -> None:
    """Write ``data`` (bytes, or a function that writes into the open file) to ``path`` atomically.

    ``what`` names the file in errors ("checkpoint", "config"). ``text`` opens the temporary file in text mode
    (for a writer function). Exceptions other than OSError from a writer function propagate unchanged, after the
    temporary file was removed.

    Raises:
        FileWriteError: the folder is not writable, the disk is full, or another OS error.
    """
    directory = os.path.dirname(os.path.abspath(path))
    temp_path = None
    try:
        fd, temp_path = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 would make the file private, unlike a plain open()
        with os.fdopen(fd, "w" if text else "wb") as file:
            if callable(data):
                data(file)
            else:
                file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_path, path)
        temp_path = None
    except OSError as exc:
        raise FileWriteError(what, path, exc) from exc
    finally:
        if temp_path is not None:
            try:
                os.remove(temp_path)
            except OSError:
                pass
