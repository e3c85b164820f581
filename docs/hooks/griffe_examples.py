"""Griffe extension: the package's usage examples render as code on the API page.

The docstrings write examples in three ways, all readable in ``help()`` and in an editor:
``Example:`` followed by doctest lines (``>>>``), ``Example::`` followed by an indented
literal block (reST), and ``Example:`` followed by a fenced block. Griffe's Google parser turns
only a section titled ``Examples:`` into code, and renders ``Example:`` as prose, where
``[...][:1]`` in a doctest reads as a Markdown link. This extension rewrites the first two
forms when the API page is built (the source stays as it is):

- ``Example:`` whose block holds doctest lines becomes an ``Examples:`` section;
- ``Example::`` with an indented block becomes ``Example:`` around a fenced Python block.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_TITLE = re.compile(r"^(?P<indent>\s*)(?P<word>Examples?)(?P<colons>::?)\s*$")


def _block(lines: list[str], start: int, indent: int) -> int:
    """Index just past the block indented deeper than ``indent`` that begins at ``start``."""
    end = start
    while end < len(lines):
        line = lines[end]
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return end


def rewrite_examples(text: str) -> str:
    """Return the docstring text with its example sections in a form griffe renders as code."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _TITLE.match(lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue

        indent = len(match["indent"])
        body_start = i + 1
        while body_start < len(lines) and not lines[body_start].strip():
            body_start += 1
        end = _block(lines, body_start, indent)
        body = lines[body_start:end]

        if match["colons"] == "::" and body:
            inner = " " * (indent + 4)
            depth = min(len(b) - len(b.lstrip()) for b in body if b.strip())
            out.append(f"{match['indent']}Example:")
            out.append(f"{inner}```python")
            out.extend(f"{inner}{b[depth:]}" if b.strip() else "" for b in body)
            out.append(f"{inner}```")
        elif any(b.lstrip().startswith(">>>") for b in body):
            out.append(f"{match['indent']}Examples:")
            out.extend(lines[i + 1 : end])
        else:
            out.extend(lines[i:end])
        i = end
    return "\n".join(out)


class ExampleSections(griffe.Extension):
    """Rewrites example sections of every docstring before griffe parses it."""

    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        """Rewrite the example sections of one object's docstring."""
        if obj.docstring is not None:
            obj.docstring.value = rewrite_examples(obj.docstring.value)
