"""The one exception type users see: a clear, one-line message saying what is wrong and what to do."""


class ScalePlanError(ValueError):
    """Bad input or an impossible request. The CLI prints it on one line and exits 2.

    ``param`` names the keyword argument(s) at fault (``"tp"``, ``"mfu"``), and the message names it the same way, so a
    library caller reads the name they passed. The CLI shows that first mention as its flag (``--tp``); see
    :meth:`for_cli`. The core never spells CLI flags itself.
    """

    def __init__(self, message: str, *, param: str | tuple[str, ...] | None = None):
        super().__init__(message)
        self.param = param

    def for_cli(self, flags: dict[str, str] | None = None) -> str:
        """The message with the first whole-word mention of each name in ``param`` replaced by its flag
        (``flags[name]``, or ``--`` + the name with dashes)."""
        import re

        text = str(self)
        names = (self.param,) if isinstance(self.param, str) else tuple(self.param or ())
        for name in names:
            flag = (flags or {}).get(name, "--" + name.replace("_", "-"))
            text = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", flag, text, count=1)
        return text

def unknown_name(kind: str, name: str, known: list[str], candidates: list[str] | None = None) -> ScalePlanError:
    """'unknown KIND NAME. Did you mean X? Known KINDs: ...' with the closest match among ``candidates``."""
    import difflib

    close = difflib.get_close_matches(name, candidates or known, n=1, cutoff=0.3)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ScalePlanError(f"unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(known)}")
