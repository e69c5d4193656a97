"""The docs the code cites ship with it, and every "docs/X.md §N" citation names a section that exists."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CITE = re.compile(r"docs/(planning|memory|fitting)\.md(?: §(\d+(?:\.\d+)?))?")


def _sections(md: Path) -> set[str]:
    out = set()
    for line in md.read_text(encoding="utf-8").splitlines():
        m = re.match(r"#{2,4} (\d+(?:\.\d+)?)[. ]", line)
        if m:
            out.add(m.group(1))
    return out


def test_every_code_citation_resolves():
    cited = []
    for path in list((ROOT / "scaling_planner").rglob("*.py")) + [ROOT / "scaling_planner" / "data" / "gpus.csv"]:
        for m in CITE.finditer(path.read_text(encoding="utf-8")):
            cited.append((path.name, m.group(1), m.group(2)))
    assert len(cited) >= 10  # the MFU defaults, the memory bytes table, the fitting recipes ...
    for where, doc, sec in cited:
        md = ROOT / "docs" / f"{doc}.md"
        assert md.exists(), f"{where} cites docs/{doc}.md, which is missing"
        if sec:
            assert sec in _sections(md), f"{where} cites docs/{doc}.md §{sec}, which has no such section"


def test_docs_ship_in_the_wheel():
    text = (ROOT / "pyproject.toml").read_text()
    for doc in ("fitting", "memory", "planning"):
        assert f'"docs/{doc}.md" = "scaling_planner/docs/{doc}.md"' in text
