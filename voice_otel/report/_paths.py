"""Saying which part of an output path is at fault when it cannot be written."""

from __future__ import annotations

from pathlib import Path


def unwritable_reason(path: str | Path, exc: OSError) -> str:
    """Why ``path`` could not be written: a file where a directory must be, or the OS's reason.

    ``mkdir(parents=True)`` under a file says ``File exists`` about the file, which reads as if
    the output itself were in the way.
    """
    for parent in reversed(Path(path).parents):
        if parent.exists() and not parent.is_dir():
            return f"{parent} is a file, not a directory"
    return exc.strerror or str(exc)
