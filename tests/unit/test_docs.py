"""The documentation: a short README, links and anchors that resolve, and
example inventories that the docs show exactly as they are in the tree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
README_MAX_LINES = 200

FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
# [text](target): the text may span lines; the target has no spaces.
LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\n)*?\]\(([^()\s]+)\)")
# A fenced yaml block whose first line names the example file it shows.
EXAMPLE_BLOCK = re.compile(r"^```yaml\n# (docs/examples/\S+)\n(.*?)^```$", re.M | re.S)


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def outside_fences(text: str) -> str:
    """The text with the lines of fenced code blocks blanked (so that line
    numbers stay)."""
    lines, inside = [], False
    for line in text.split("\n"):
        if FENCE.match(line):
            inside = not inside
            lines.append("")
        else:
            lines.append("" if inside else line)
    return "\n".join(lines)


def prose(text: str) -> str:
    """The text outside fenced code blocks, without inline code spans."""
    return re.sub(r"`[^`\n]*`", "", outside_fences(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text in lower case,
    without punctuation (hyphens and underscores stay), spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in a Markdown file, with GitHub's -1, -2, ...
    for repeated headings."""
    seen: dict[str, int] = {}
    found = set()
    for line in outside_fences(path.read_text(encoding="utf-8")).split("\n"):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """(line, target) of every link in the file's prose."""
    text = prose(path.read_text(encoding="utf-8"))
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in LINK.finditer(text)]


def is_external(target: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I))


def test_readme_is_short():
    count = len(README.read_text(encoding="utf-8").splitlines())
    assert count <= README_MAX_LINES, f"README.md has {count} lines; at most {README_MAX_LINES}"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(path):
    problems = []
    for line, target in links(path):
        if is_external(target):
            continue
        file_part, _sep, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(ROOT)}:{line}: {target}"
        if not dest.exists():
            problems.append(f"{where}: no such file")
            continue
        if not anchor:
            continue
        if dest.suffix != ".md":
            problems.append(f"{where}: an anchor into a file that is not Markdown")
        elif anchor not in anchors(dest):
            problems.append(f"{where}: no heading of {dest.relative_to(ROOT)} has the anchor #{anchor}")
    assert not problems, "\n".join(problems)


def test_slug_follows_github():
    assert slug("Shared topology (`sdn_ha_*`)") == "shared-topology-sdn_ha_"
    assert slug("The kernel capture's cost") == "the-kernel-captures-cost"
    assert slug("Network faults: what happens, and what is proven") == "network-faults-what-happens-and-what-is-proven"


def example_blocks() -> list[tuple[Path, str, str]]:
    """(document, example path, block text after its first line) of every
    fenced yaml block whose first line names a file under docs/examples/."""
    found = []
    for path in markdown_files():
        for match in EXAMPLE_BLOCK.finditer(path.read_text(encoding="utf-8")):
            found.append((path, match.group(1), match.group(2)))
    return found


def test_the_docs_show_examples():
    assert example_blocks(), "no yaml block starts with '# docs/examples/...'"


@pytest.mark.parametrize(
    ("doc", "example", "shown"),
    example_blocks(),
    ids=[f"{d.relative_to(ROOT)}:{e}" for d, e, _shown in example_blocks()],
)
def test_shown_example_equals_its_file(doc, example, shown):
    path = ROOT / example
    assert path.is_file(), f"{doc.relative_to(ROOT)} shows {example}, which does not exist"
    assert shown == path.read_text(encoding="utf-8"), (
        f"{doc.relative_to(ROOT)} shows {example} differently from the file; copy the file into the block"
    )


def example_dirs() -> list[Path]:
    return sorted(p for p in EXAMPLES.iterdir() if p.is_dir())


def test_there_are_examples():
    assert example_dirs(), "docs/examples/ holds no example inventory"


@pytest.mark.parametrize("example", example_dirs(), ids=lambda p: p.name)
def test_example_is_an_inventory_the_docs_use(example):
    assert (example / "hosts.yml").is_file(), f"{example.relative_to(ROOT)} has no hosts.yml"
    name = f"examples/{example.name}"
    users = [p for p in markdown_files() if name in p.read_text(encoding="utf-8")]
    assert users, f"no document refers to docs/{name}"


def test_nat_pair_hosts_match_proxy_pair():
    """docs/inventory.md says the NAT-mode pair's hosts' files are the
    proxy-mode pair's."""
    proxy, nat = EXAMPLES / "proxy-pair" / "host_vars", EXAMPLES / "nat-pair" / "host_vars"
    names = sorted(p.name for p in proxy.iterdir())
    assert names == sorted(p.name for p in nat.iterdir())
    for name in names:
        assert (proxy / name).read_text(encoding="utf-8") == (nat / name).read_text(encoding="utf-8"), name
