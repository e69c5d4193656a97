"""Reading JSON files and checking output paths: one-line errors that name the file."""

from __future__ import annotations

from ..errors import ScalePlanError


def read_json(path, what: str):
    """Parse a JSON file, turning a missing file or broken JSON into a one-line ScalePlanError naming it."""
    import json
    from pathlib import Path

    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScalePlanError(f"{p}: no such {what}") from None
    except IsADirectoryError:
        raise ScalePlanError(f"{p}: is a directory; give the {what} itself") from None
    except PermissionError:
        raise ScalePlanError(f"{p}: permission denied reading the {what}") from None
    except UnicodeDecodeError:
        raise ScalePlanError(f"{p}: not a text file (cannot decode as UTF-8); give the {what}") from None
    except json.JSONDecodeError as e:
        raise ScalePlanError(f"{p}: not valid JSON (line {e.lineno}: {e.msg})") from None


def check_output_path(path, force: bool | None, flag: str) -> None:
    """Check a file the command will write, before any work: not a folder, its folder exists and is writable, and
    (unless ``force``) it does not exist yet. ``force=None`` leaves the existence check to the writer.
    One-line ScalePlanError naming the flag and the path."""
    import os
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        raise ScalePlanError(f"{flag} {path}: is a directory; give a file name")
    parent = path.parent
    if not parent.exists():
        raise ScalePlanError(f"{flag} {path}: directory {parent} does not exist")
    if not parent.is_dir():
        raise ScalePlanError(f"{flag} {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ScalePlanError(f"{flag} {path}: directory {parent} is not writable (permission denied)")
    if force is None or not path.exists():
        return
    if not force:
        raise ScalePlanError(f"{flag} {path}: exists; pass --force to overwrite it")
    if not os.access(path, os.W_OK):
        raise ScalePlanError(f"{flag} {path}: exists and is not writable")
