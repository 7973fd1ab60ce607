"""The README's links resolve: a rewrite that drops a section, a picture or a config someone links to fails here."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _headings() -> set[str]:
    """Anchors of the README's headings; a ``#`` line inside a fenced code block is a comment, not a heading."""
    anchors, fenced = set(), False
    for line in README.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif line.startswith("#") and not fenced:
            anchors.add(_anchor(line.lstrip("#")))
    return anchors


def test_every_section_link_names_a_heading() -> None:
    headings = _headings()
    links = set(re.findall(r"\]\(#([^)]+)\)", README))
    assert links, "the README links no section: the pattern no longer matches its links"
    assert links <= headings, f"links to sections that do not exist: {sorted(links - headings)}"


def test_every_linked_file_exists() -> None:
    paths = set(re.findall(r"\]\(((?:docs|configs|benchmarks)/[^)\s]+)\)", README))
    assert paths, "the README links no file: the pattern no longer matches its links"
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"the README links files that do not exist: {missing}"


def test_every_config_named_exists() -> None:
    names = set(re.findall(r"configs/([\w/]+\.yaml)", README))
    assert names
    missing = sorted(n for n in names if not (ROOT / "configs" / n).exists())
    assert not missing, f"the README names configs that do not exist: {missing}"
