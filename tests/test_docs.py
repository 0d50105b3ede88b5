"""The README stays a newcomer's page, and every link between it and docs/ leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_relative_link_resolves() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


def test_the_readme_keeps_the_two_commands_and_links_every_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "python3 -m pip install -r requirements.txt && python3 run.py --once" in readme
    assert "python3 -m pip install -r requirements-dev.txt && python3 -m pytest" in readme
    assert "python -m pip install -r requirements-dev.txt && python -m pytest" in (ROOT / ".ci" / "run").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        assert f"docs/{page.name}" in readme, f"docs/{page.name} is not linked from the README"
    assert len(readme.splitlines()) <= 150
