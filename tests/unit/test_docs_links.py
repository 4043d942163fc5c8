"""Every relative link in the README and docs/ leads somewhere: the file exists, and a
``#fragment`` into a Markdown file names one of its headings.

The README is a door to docs/; a reader who follows a dead link from it is lost. External links
(``http://``, ``https://``, ``mailto:``) are not checked: no network here, and they are few.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPOSITORY_ROOT

LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
EXTERNAL = ("http://", "https://", "mailto:")
FENCE = re.compile(r"^(```|~~~)")


def documents() -> list[Path]:
    return [REPOSITORY_ROOT / "README.md", *sorted((REPOSITORY_ROOT / "docs").glob("*.md"))]


def prose(text: str) -> str:
    """The text outside fenced code blocks (a link in a code example is not a link)."""
    kept, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            kept.append(line)
    return "\n".join(kept)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for line in prose(path.read_text(encoding="utf-8")).splitlines():
        if match := re.match(r"^#{1,6}\s+(.*)$", line):
            found.add(slug(match.group(1)))
    return found


def relative_links(path: Path) -> list[str]:
    text = prose(path.read_text(encoding="utf-8"))
    return [target for target in LINK.findall(text) if not target.startswith(EXTERNAL)]


def test_the_documents_have_links_to_check() -> None:
    assert len(documents()) >= 8
    assert len(relative_links(REPOSITORY_ROOT / "README.md")) >= 10


@pytest.mark.parametrize("document", documents(), ids=lambda path: path.name)
def test_every_relative_link_resolves(document: Path) -> None:
    broken = []
    for target in relative_links(document):
        file_part, _, fragment = target.partition("#")
        destination = (document.parent / file_part).resolve() if file_part else document
        if not destination.exists():
            broken.append(f"{target}: no such file")
            continue
        if fragment and destination.suffix == ".md" and fragment not in anchors(destination):
            broken.append(f"{target}: no heading #{fragment} in {destination.name}")
    assert not broken, f"{document.name}: " + "; ".join(broken)


def test_the_slug_follows_github() -> None:
    assert (
        slug("The contract (`proto/genre/v1/genre.proto`)") == "the-contract-protogenrev1genreproto"
    )
    assert slug("When it does not answer: silence, speech, noise and doubt") == (
        "when-it-does-not-answer-silence-speech-noise-and-doubt"
    )


ISSUE_NUMBER = re.compile(r"(?i)issue\s*#?\d|#\d")


@pytest.mark.parametrize("document", documents(), ids=lambda path: path.name)
def test_no_section_is_titled_by_an_issue_number(document: Path) -> None:
    """Readers do not know the issues: a heading names what the section is about."""
    lines = prose(document.read_text(encoding="utf-8")).splitlines()
    assert not [line for line in lines if line.startswith("#") and ISSUE_NUMBER.search(line)]


def test_the_issue_number_rule_sees_one() -> None:
    assert ISSUE_NUMBER.search("## Worker processes (issue #15)")
    assert ISSUE_NUMBER.search("## Issue 24: the data plane")
    assert not ISSUE_NUMBER.search("## Worker processes")


def test_the_readme_is_a_door() -> None:
    lines = (REPOSITORY_ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move detail into docs/"
