"""The repository stands alone: no file names a document that is not in it.

Vendor documents are cited by title and version ("云信 API v8.3"), never by a path; design notes live in
docs/. A ``*.md`` name must be a file of the repository (beside the citing file, at its root, or under
docs/), and no path may lead out of it.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache", "build"}
TEXT_SUFFIXES = {
    ".py",
    ".md",
    ".toml",
    ".yml",
    ".yaml",
    ".cfg",
    ".ini",
    ".txt",
    ".html",
    ".js",
    ".css",
    ".lua",
    ".sh",
}
TEXT_NAMES = {"Procfile", "Dockerfile", "run", "extra-setup"}

# Names of documents that lived outside the repository, and paths that lead out of it.
FORBIDDEN = re.compile(r"\bDESIGN\.md|\bVENDORS\.md|\.\./shared\b|\bshared/|\b(?i:seeds?)[ _/-]?0\d\d")
MARKDOWN_NAME = re.compile(r"[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md\b")


def repository_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*"):
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in path.relative_to(ROOT).parts):
            continue
        if path.is_file() and (path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES):
            files.append(path)
    return files


def test_given_every_file_then_none_cites_a_document_outside_the_repository() -> None:
    me = Path(__file__).resolve()
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in repository_files()
        if path != me
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if FORBIDDEN.search(line)
    ]
    assert found == []


def test_given_every_markdown_name_in_the_repository_then_the_file_exists() -> None:
    missing = []
    me = Path(__file__).resolve()
    for path in (p for p in repository_files() if p != me):
        text = path.read_text(encoding="utf-8", errors="replace")
        for name in set(MARKDOWN_NAME.findall(text)):
            candidates = (path.parent / name, ROOT / name, ROOT / "docs" / name)
            if not any(c.resolve().is_file() and ROOT in c.resolve().parents for c in candidates):
                missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert missing == []


def test_given_a_citation_of_an_outside_document_then_the_patterns_catch_it() -> None:
    for line in ("see DESIGN.md", "(VENDORS.md, 2.3)", "../shared/vendors", "seed 003", "seeds/001-yunxin"):
        assert FORBIDDEN.search(line), line
    for line in ("云信 API v8.3, GetReport2", "docs/state-machine.md", "random seed 2026"):
        assert not FORBIDDEN.search(line), line
