"""The documentation holds together: every relative link between README.md,
BENCHMARKS.md and docs/ resolves (file and heading), README links every page
of docs/, and docs/configuration.md keeps its one settings table in the
format other tests parse."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
TABLE_HEADER = "| Setting | Kind | Default | Meaning |"
TEST_ONLY = {"FAULT_ACCEPT", "FAULT_CONSUMER_CRASH_AFTER", "BENCH_ROUTES", "FIXED_ACCEPT"}


def prose(page: Path) -> str:
    """The page without fenced code blocks (links in code are not links)."""
    return FENCE.sub("", page.read_text(encoding="utf-8"))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # [text](link) -> text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for m in HEADING.finditer(prose(page)):
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(page: Path) -> list[str]:
    text = CODE_SPAN.sub("", prose(page))
    return [m.group(1) for m in LINK.finditer(text)]


def test_every_relative_link_resolves():
    broken = []
    for page in PAGES:
        for target in links(page):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(ROOT)}: ({target})"
            if not dest.exists():
                broken.append(f"{where}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{where}: no heading #{anchor} in {dest.relative_to(ROOT)}")
            elif anchor and dest.suffix != ".md":
                broken.append(f"{where}: an anchor into a file that is not markdown")
    assert not broken, "\n".join(broken)


def test_the_readme_links_every_page_of_docs():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links(ROOT / "README.md")}
    missing = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert not missing, f"README.md does not link: {missing}"


def test_the_readme_stays_a_front_door():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode()) < 10 * 1024, "README.md is meant to stay under 10 KB"
    sections = [m.group(1) for m in re.finditer(r"^## (.+)$", readme, re.M)]
    assert sections[0] == "The two commands", sections
    first = readme[readme.index("## The two commands") : readme.index(f"## {sections[1]}")]
    assert "make dev" in first and "make test" in first


def settings_rows() -> list[list[str]]:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    headers = [i for i, line in enumerate(lines) if line.strip() == TABLE_HEADER]
    assert len(headers) == 1, f"docs/configuration.md needs exactly one line {TABLE_HEADER!r}"
    rows = []
    for line in lines[headers[0] + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def test_the_settings_table_has_one_well_formed_row_per_setting():
    rows = settings_rows()
    assert rows, "the settings table has no rows"
    names = []
    for row in rows:
        assert len(row) == 4, f"a row needs 4 cells: {row}"
        name, kind, default, meaning = row
        m = re.fullmatch(r"`([A-Z][A-Z0-9_]*)`", name)
        assert m, f"the first cell is a setting name in backticks: {name!r}"
        assert kind in ("secret", "var"), f"{name}: kind {kind!r}"
        assert default and meaning, f"{name}: empty cell"
        names.append(m.group(1))
    assert len(names) == len(set(names)), "a setting is listed twice"
    assert not TEST_ONLY & set(names), "test-only switches belong in docs/testing.md"
    testing = (ROOT / "docs" / "testing.md").read_text(encoding="utf-8")
    for switch in TEST_ONLY:
        assert f"`{switch}`" in testing
