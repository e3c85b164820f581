"""MkDocs hook: links from a page to a repository file outside ``docs/`` work on the site too.

Pages link to examples and configs the way a reader on a code host expects, relative to the
page (``[the example](../examples/fastapi_app.py)``). MkDocs only knows files under ``docs/``
and reports such links as broken in strict mode. This hook copies every repository file that
a page links to into the site under ``source/`` (``source/examples/fastapi_app.py``) and points
the link there. A link to a file that does not exist is left alone, so the strict build still
fails on it.
"""

from __future__ import annotations

import logging
import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.source_links")

SITE_DIR = "source"

# Inline links and images: [text](target) or [text](target "title"); targets without a scheme.
_LINK = re.compile(r"(\]\()(?P<target>\.\./[^)\s#]+)(?P<rest>(#[^)\s]*)?(\s+\"[^\"]*\")?\))")


def _repository_file(page_src: str, target: str, docs_dir: Path) -> str | None:
    """The target's path relative to the repository root, if it is a file outside docs/."""
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(page_src), target))
    if not joined.startswith("../") or joined.startswith("../../"):
        return None
    relative = joined[3:]
    if (docs_dir.parent / relative).is_file():
        return relative
    return None


def on_files(files: Files, config: Any) -> Files:
    """Add every repository file a page links to, under ``source/``."""
    docs_dir = Path(config["docs_dir"])
    wanted: set[str] = set()
    for file in files.documentation_pages():
        text = Path(file.abs_src_path or "").read_text(encoding="utf-8")
        for match in _LINK.finditer(text):
            relative = _repository_file(file.src_uri, match["target"], docs_dir)
            if relative is not None:
                wanted.add(relative)

    for relative in sorted(wanted):
        src_uri = f"{SITE_DIR}/{relative}"
        if files.get_file_from_path(src_uri) is None:
            abs_src = docs_dir.parent / relative
            files.append(File.generated(config, src_uri, abs_src_path=str(abs_src)))
            log.debug("copying %s into the site", relative)
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Point links to repository files at their copies under ``source/``."""
    docs_dir = Path(config["docs_dir"])
    page_src = page.file.src_uri

    def rewrite(match: re.Match[str]) -> str:
        relative = _repository_file(page_src, match["target"], docs_dir)
        if relative is None:
            return match.group(0)
        target = posixpath.relpath(f"{SITE_DIR}/{relative}", posixpath.dirname(page_src) or ".")
        return f"{match.group(1)}{target}{match['rest']}"

    return _LINK.sub(rewrite, markdown)
