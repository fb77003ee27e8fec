"""The project's user-facing errors. Messages name the file, column or config key and say the fix."""


class PatchTSTHPOError(Exception):
    """Base class: the CLI layer prints these as one line and exits non-zero."""


class ConfigError(PatchTSTHPOError):
    """A composed config that cannot work (bad override, incompatible arch and budget, unknown key)."""


class DataError(PatchTSTHPOError):
    """Input data that cannot be used (missing file, bad column, look-ahead risk, tampered manifest)."""


class RunFailed(PatchTSTHPOError):
    """A training process of a multi-process run failed or died (the message names the rank and why)."""
