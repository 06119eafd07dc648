"""Write each role's README.md from its meta/argument_specs.yml and meta/main.yml.

    python3 scripts/role_readmes.py           write the READMEs
    python3 scripts/role_readmes.py --check   fail if one differs (make build)

The argument specs are the reference (ansible-doc -t role shows them); the
README is their short form, which Galaxy shows on a role's page.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COLLECTION = "sdn_ha.control_plane"
# Ansible's documentation markup, as Markdown: O(opt), C(code), V(value),
# M(module) and P(plugin) become code, I() and B() emphasis, L(text,url) and
# U(url) links.
MARKUP = re.compile(r"\b([OCVIPREMBLU])\(([^()]*(?:\([^()]*\)[^()]*)*)\)")


def markdown(match: re.Match) -> str:
    kind, text = match[1], match[2]
    if kind == "I":
        return f"*{text}*"
    if kind == "B":
        return f"**{text}**"
    if kind == "U":
        return f"<{text}>"
    if kind == "L":
        label, _comma, url = text.rpartition(",")
        return f"[{label}]({url})"
    return f"`{text.split('#')[0]}`"


def plain(text: str | list | None) -> str:
    if text is None:
        return ""
    if isinstance(text, list):
        text = " ".join(text)
    text = " ".join(str(text).split())
    text = MARKUP.sub(markdown, text)
    return text.replace("|", "\\|")


def value(default) -> str:
    """A default as YAML writes it (true, not True)."""
    return yaml.safe_dump(default, default_flow_style=True, width=1000).removesuffix("\n...\n").strip()


def rows(options: dict, prefix: str = "") -> list[str]:
    lines = []
    for name, spec in options.items():
        kind = spec.get("type", "str")
        if kind == "list" and "elements" in spec:
            kind = f"list of {spec['elements']}"
        default = f"`{value(spec['default'])}`" if "default" in spec else ("required" if spec.get("required") else "")
        if spec.get("choices"):
            plain_choices = ", ".join(f"`{choice}`" for choice in spec["choices"])
            default = f"{default} (one of {plain_choices})".strip()
        lines.append(f"| `{prefix}{name}` | {kind} | {default} | {plain(spec.get('description'))} |")
        if spec.get("options"):
            suffix = "[]." if spec.get("type") == "list" else "."
            lines += rows(spec["options"], f"{prefix}{name}{suffix}")
    return lines


def readme(role: Path) -> str:
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    info = yaml.safe_load((role / "meta" / "main.yml").read_text())["galaxy_info"]
    platforms = "; ".join(f"{p['name']} {', '.join(map(str, p['versions']))}" for p in info["platforms"])
    main = specs["main"]
    out = [
        "<!-- Written by scripts/role_readmes.py from meta/argument_specs.yml and meta/main.yml: edit those. -->",
        f"# {COLLECTION}.{role.name}",
        "",
        plain(info["description"]) + ".",
        "",
        *(f"- {plain(line)}" for line in main.get("description", [])),
        "",
        f"Platforms: {platforms}. Full reference: `ansible-doc -t role {COLLECTION}.{role.name}`.",
    ]
    for entry, spec in specs.items():
        call = f"`tasks_from: {entry}`" if entry != "main" else "the role itself"
        out += ["", f"## {entry}: {plain(spec.get('short_description'))}", "", f"Run as {call}."]
        if entry != "main":
            out += [f"- {plain(line)}" for line in spec.get("description", [])]
        if spec.get("options"):
            out += ["", "| Variable | Type | Default | Description |", "|---|---|---|---|", *rows(spec["options"])]
    return "\n".join(out).replace("\n\n\n", "\n\n") + "\n"


def main() -> int:
    check = "--check" in sys.argv[1:]
    stale = []
    for role in sorted(p for p in (ROOT / "roles").iterdir() if (p / "meta" / "argument_specs.yml").exists()):
        path, text = role / "README.md", readme(role)
        if path.exists() and path.read_text() == text:
            continue
        if check:
            stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"role READMEs differ from their argument specs: {', '.join(stale)}; run python3 scripts/role_readmes.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
