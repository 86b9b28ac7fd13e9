"""Errors that name where bad input was found: the file, the record and the field."""

from __future__ import annotations


class DataError(ValueError):
    """Bad input data, located precisely enough for a user to fix it.

    Args:
        message: What is wrong, in plain words.
        file: Path of the offending file, if any.
        record: Identifier of the offending record (frame id, material id or line number).
        field: Name of the offending field.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        record: str | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = message
        self.file = None if file is None else str(file)
        self.record = None if record is None else str(record)
        self.field = field
        where = ", ".join(
            f"{name} {value!r}"
            for name, value in (("file", self.file), ("record", self.record), ("field", field))
            if value is not None
        )
        super().__init__(f"{where}: {message}" if where else message)


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the key."""
