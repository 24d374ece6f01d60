"""The project's own error types. Every message is one line a user can act on."""

from __future__ import annotations


class OstafError(Exception):
    """Base of every error the core raises on purpose; its message is shown to the user."""

    exit_code = 2


class InputImageError(OstafError):
    """A reference image or mask cannot be read or used."""


class ModelLoadError(OstafError):
    """A base model cannot be found, read or recognised."""


class AttributeFileError(OstafError):
    """An attribute file is missing, corrupt, truncated or not an attribute."""


class IncompatibleModelError(OstafError):
    """An attribute was tuned on a base model with another architecture."""


class SettingsError(OstafError):
    """A setting or a request holds an impossible value."""


class SharedWordError(SettingsError):
    """Two attributes applied together share one placeholder word."""

    def __init__(self, message: str, names: tuple[str, str], word: str) -> None:
        super().__init__(message)
        self.names, self.word = names, word


class TuningDivergedError(OstafError):
    """The tuning loss became NaN or infinite."""


class OutOfMemoryError(OstafError):
    """The device ran out of memory; the message says what to change."""


class ProjectError(OstafError):
    """A project cannot be created, opened or written."""


class ProjectLockedError(ProjectError):
    """Another running instance holds the project's write lock."""


class StorageError(OstafError):
    """A file could not be written (disk full, permissions, read-only folder)."""


class Cancelled(OstafError):
    """The user cancelled the operation; nothing was written."""

    exit_code = 130

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message)
