"""The one exception type users see: a clear, one-line message saying what is wrong and what to do."""


class ScalePlanError(ValueError):
    """Bad input or an impossible request. The CLI prints ``str(err)`` on one line and exits 2."""
