"""The repository stands on its own: no tracked file points outside it, and every docs citation resolves.

A user's clone has nothing beside it, so a test that reads the reference folder beside a development
checkout, or a development machine's absolute path, passes there and fails everywhere else.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Spelled in pieces so that this file does not match its own patterns.
_OUTSIDE = re.compile(
    "|".join(
        (
            r"\.\./" + "shared",  # the reference folder beside the development checkout
            r"(?<![\w.~<>-])/" + r"work/",  # the development machines' checkout root
            r"(?<![\w.~])/" + r"root/",  # root's home directory
            r"(?<![\w.~])/" + r"home/[\w.-]+/",  # a user's home directory
            r"(?<![\w.~])/" + r"Users/[\w.-]+/",  # a macOS home directory
        )
    )
)
_CITATION = re.compile(r"docs/(\w+)\.md §\s?(\d+[a-z]?)")
_HEADING = re.compile(r"^#{2,4} (\d+[a-z]?)[.\s]", re.MULTILINE)


def _tracked_text_files() -> list[Path]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=30
        ).stdout.decode()
        paths = [ROOT / name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):  # an exported tree without git
        paths = [p for p in ROOT.rglob("*") if p.is_file() and ".venv" not in p.parts and ".git" not in p.parts]
    files = []
    for path in paths:
        try:
            files.append((path, path.read_text(encoding="utf-8")))
        except (UnicodeDecodeError, FileNotFoundError):
            continue  # binary files (screenshots) name no paths
    return files


TRACKED = _tracked_text_files()


def test_the_tree_under_test_has_its_files():
    names = {path.relative_to(ROOT).as_posix() for path, _ in TRACKED}
    assert {"lingma_proxy.py", "README.md", "docs/protocol.md", "tests/fixtures/clients/codex-turn1.json"} <= names


def test_no_tracked_file_names_a_path_outside_the_repository():
    found = [
        f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}: {match.group(0)}"
        for path, text in TRACKED
        for match in _OUTSIDE.finditer(text)
    ]
    assert found == [], "paths outside the repository:\n" + "\n".join(found)


def _sections(doc: str) -> set[str]:
    return set(_HEADING.findall((ROOT / "docs" / f"{doc}.md").read_text(encoding="utf-8")))


def test_every_docs_citation_names_a_document_and_section_that_exist():
    citations = {(doc, section) for _, text in TRACKED for doc, section in _CITATION.findall(text)}
    assert len(citations) > 10, "the code cites the contributor docs; the pattern must still find them"
    docs = {doc for doc, _ in citations}
    missing_docs = sorted(doc for doc in docs if not (ROOT / "docs" / f"{doc}.md").is_file())
    assert missing_docs == []
    sections = {doc: _sections(doc) for doc in docs}
    missing = sorted(f"docs/{doc}.md §{section}" for doc, section in citations if section not in sections[doc])
    assert missing == [], "cited sections that do not exist: " + ", ".join(missing)


@pytest.mark.parametrize("name", ["architecture", "protocol", "clients"])
def test_the_contributor_documents_exist(name):
    assert len((ROOT / "docs" / f"{name}.md").read_text(encoding="utf-8")) > 2000
