"""The README against the code: its settings tables, its troubleshooting messages, `--help`;
and the links between the repository's markdown files.

Conventions the README follows (and these tests rely on):

- Settings: every table in the "## Settings" section whose header is
  `| Variable | Default | Meaning |` lists settings; the backticked UPPER_CASE names in a row's
  first cell are the names that row documents (`NAME` / `NAME__FILE` for secrets).
- Troubleshooting: in the table of the "## Troubleshooting" section, every backticked span in the
  first column ("You see") is text the code prints. `<...>` (quotes around it included) and `...`
  or `…` stand for what varies.
- The settings the code reads are found in `app/` by their reader calls: a method of
  `app.settings._Reader` (`read.text("NAME", ...)`, `read.secret("NAME")`, ...; a secret also
  documents `NAME__FILE`) or a `.get("NAME")` on an environment mapping (`env`, `environ`,
  `os.environ`), with the name written as a string or as a module-level string constant.
- Links: an inline link `[text](target)` outside code in README.md, docs/*.md or
  tests/data/README.md whose target has no URL scheme names a file of the repository (relative to
  the linking file) and, with `#anchor` on a markdown file, one of its GitHub heading anchors.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import unquote

import pytest

from app.cli import build_parser
from app.settings import _Reader

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
APP = ROOT / "app"
SETTINGS_HEADER = "| Variable | Default | Meaning |"
TROUBLESHOOTING_HEADER = "| You see | Why | What to do |"
SETTING_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:__?[A-Z0-9]+)*$")
# Set by the platform (OCI), the desktop or supervisord, not by the user: the README names them in
# prose.
PLATFORM_VARIABLES = {
    "OCI_RESOURCE_PRINCIPAL_VERSION",
    "OCI_RESOURCE_PRINCIPAL_REGION",
    "XDG_DATA_HOME",
    "SUPERVISOR_ENABLED",
}
ENVIRONMENT_MAPPINGS = {"env", "environ", "os.environ", "self.environ"}
# A README placeholder: <...> with any quotes around it, or an ellipsis.
PLACEHOLDER = re.compile(r"'?<[^<>]+>'?|\.\.\.|…")
# printf-style fields in log format strings: where the logger inserts a value.
PRINTF_FIELD = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[sdrifgx]")


# --- the README's tables ---------------------------------------------------------------------------


def readme_section(title: str) -> str:
    """The text of the `## title` section, up to the next `## ` heading."""
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def table_rows(section: str, header: str) -> list[list[str]]:
    """Cells of every row of every table in `section` that starts with `header`."""
    rows: list[list[str]] = []
    in_table = False
    for line in section.splitlines():
        if line.strip() == header:
            in_table = True
            continue
        if in_table and line.startswith("| ---"):
            continue
        if in_table and line.startswith("|"):
            rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
            continue
        in_table = False
    return rows


def documented_settings() -> dict[str, str]:
    """Every name in the settings tables' first column -> the row's first cell."""
    names: dict[str, str] = {}
    for row in table_rows(readme_section("Settings"), SETTINGS_HEADER):
        for name in re.findall(r"`([^`]+)`", row[0]):
            assert SETTING_NAME.match(name), f"settings row names {name!r}: not a variable name"
            assert name not in names, f"{name} has two rows in the settings tables"
            names[name] = row[0]
    return names


def troubleshooting_messages() -> list[str]:
    rows = table_rows(readme_section("Troubleshooting"), TROUBLESHOOTING_HEADER)
    assert rows, "the troubleshooting table is missing or has another header"
    return [message for row in rows for message in re.findall(r"`([^`]+)`", row[0])]


# --- what the code reads and prints ----------------------------------------------------------------


def app_modules() -> list[tuple[Path, ast.Module]]:
    return [
        (path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        for path in sorted(APP.rglob("*.py"))
    ]


@functools.cache
def reader_methods() -> frozenset[str]:
    """The methods of app.settings._Reader: each takes the setting's name first."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(_Reader)))
    reader = next(
        node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "_Reader"
    )
    return frozenset(
        item.name
        for item in reader.body
        if isinstance(item, ast.FunctionDef) and not item.name.startswith("_")
    )


def string_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level `NAME = "text"` assignments."""
    constants: dict[str, str] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = node.value.value
    return constants


@functools.cache
def settings_read_by_code() -> dict[str, str]:
    """Every environment variable `app/` reads -> where (path:line)."""
    modules = app_modules()
    constants: dict[str, str] = {}
    for _, tree in modules:
        constants.update(string_constants(tree))
    methods = reader_methods()
    found: dict[str, str] = {}
    for path, tree in modules:
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if not node.args:
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                name = first.value
            elif isinstance(first, ast.Name) and first.id in constants:
                name = constants[first.id]
            else:
                continue
            if not SETTING_NAME.match(name):
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            method = node.func.attr
            receiver = ast.unparse(node.func.value)
            if method in methods:
                found.setdefault(name, where)
                if method == "secret":
                    found.setdefault(f"{name}__FILE", where)
            elif method == "get" and receiver in ENVIRONMENT_MAPPINGS:
                found.setdefault(name, where)
    return found


def _literal_pieces(node: ast.AST) -> list[str]:
    """The literal runs of one string expression, split where a value is inserted."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return PRINTF_FIELD.split(node.value)
    if isinstance(node, ast.JoinedStr):
        pieces, current = [], ""
        for part in node.values:
            if isinstance(part, ast.Constant):
                current += part.value
            else:
                pieces.append(current)
                current = ""
        return [*pieces, current]
    return []


@functools.cache
def code_pieces() -> frozenset[str]:
    """Every literal run of every string in app/: what the code can print, between its values."""
    pieces: set[str] = set()
    for _, tree in app_modules():
        for node in ast.walk(tree):
            pieces.update(piece for piece in _literal_pieces(node) if piece)
    return frozenset(pieces)


def fragment_is_printed(fragment: str, pieces: frozenset[str]) -> bool:
    """True when `fragment` is a run of whole code pieces, back to back, except that its first
    piece may be cut at the front and its last at the back (a README placeholder sits there).
    So text dropped from or added inside a message is caught, not papered over."""
    if any(fragment in piece for piece in pieces):
        return True
    length = len(fragment)
    # reachable[i]: fragment[:i] is covered, ending on a piece boundary.
    reachable = [False] * (length + 1)
    for piece in pieces:  # the first piece: any suffix of a code piece
        for cut in range(len(piece)):
            tail = piece[cut:]
            if fragment.startswith(tail):
                reachable[len(tail)] = True
    for start in range(1, length):
        if not reachable[start]:
            continue
        rest = fragment[start:]
        for piece in pieces:
            if rest.startswith(piece):
                reachable[start + len(piece)] = True
            elif piece.startswith(rest):  # the last piece: a prefix of a code piece
                return True
    return reachable[length]


def message_fragments(message: str) -> list[str]:
    return [part for part in PLACEHOLDER.split(message) if part.strip()]


# --- the tests -------------------------------------------------------------------------------------


def test_the_code_reads_settings_the_scan_can_see():
    found = settings_read_by_code()
    # A scan that silently stopped finding reader calls would make the tests below vacuous.
    for name in ("TARGET", "OCI_AUTH", "SCRAPE_INTERVAL", "GF_SECURITY_ADMIN_PASSWORD__FILE"):
        assert name in found, f"the scan no longer finds {name}"


def test_every_setting_the_code_reads_is_in_the_settings_table():
    documented = documented_settings()
    missing = {
        name: where
        for name, where in settings_read_by_code().items()
        if name not in documented and name not in PLATFORM_VARIABLES
    }
    assert not missing, f"settings read by the code but not in README's settings tables: {missing}"


def test_every_settings_row_names_a_setting_the_code_reads():
    read = settings_read_by_code()
    unknown = sorted(name for name in documented_settings() if name not in read)
    assert not unknown, f"README documents settings the code never reads: {unknown}"


def test_platform_variables_are_explained_in_the_readme():
    text = README.read_text(encoding="utf-8")
    for name in PLATFORM_VARIABLES:
        assert f"`{name}`" in text, f"README does not say what {name} is"


def test_every_troubleshooting_message_is_printed_by_the_code():
    messages = troubleshooting_messages()
    assert len(messages) >= 10
    pieces = code_pieces()
    untrue = [
        (message, fragment)
        for message in messages
        for fragment in message_fragments(message)
        if not fragment_is_printed(fragment, pieces)
    ]
    assert not untrue, "troubleshooting quotes text the code does not print:\n" + "\n".join(
        f"  {fragment!r} (in {message!r})" for message, fragment in untrue
    )


def test_the_message_check_catches_an_edited_message():
    pieces = code_pieces()
    real = "; check the deployment, or raise SCRAPE_TIMEOUT and UPSTREAM_TIMEOUT_SECONDS"
    assert fragment_is_printed(real, pieces)
    # The audit's untrue line: words dropped from the middle of the real message.
    assert not fragment_is_printed("; check the deployment or raise SCRAPE_TIMEOUT", pieces)
    assert not fragment_is_printed(": timeout; upstream took too long", pieces)


def subcommands() -> list[str]:
    parser = build_parser()
    actions = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return sorted(actions[0].choices)


@pytest.mark.parametrize("command", subcommands())
def test_command_help_says_what_it_does_and_names_its_settings(command):
    result = subprocess.run(
        [sys.executable, "-m", "app", command, "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    documented = documented_settings()
    words = set(re.findall(r"\b[A-Z][A-Z0-9_]*[A-Z0-9]\b", result.stdout))
    # Names with an underscore look like settings (TARGET has none, but is documented).
    named = {word for word in words if "_" in word or word in documented}
    settings = named & set(documented)
    assert settings, f"`aqua-metrics {command} --help` names no setting:\n{result.stdout}"
    unknown = {name for name in named if name not in documented}
    assert not unknown, f"`{command} --help` names undocumented settings: {unknown}"


# --- links between the repository's markdown files ---------------------------------------------------

MARKDOWN_FILES = ("README.md", "docs/*.md", "tests/data/README.md")
FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.I)
# [text](target) or [text](target "title"); the text may hold one level of brackets and wrap lines.
INLINE_LINK = re.compile(r"\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\)")
URL_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def markdown_files() -> list[Path]:
    files = {path for pattern in MARKDOWN_FILES for path in ROOT.glob(pattern)}
    return sorted(files)


def without_code(text: str) -> str:
    """The text with fenced blocks removed and code spans blanked: a link inside code is not a
    link (link text that is code still is)."""
    return CODE_SPAN.sub("code", FENCE.sub("", text))


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its rendered text lowercased, punctuation other than
    `-` and `_` removed, each space a hyphen (github-slugger's rule)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link renders as its text
    text = re.sub(r"(\*\*|__|\*|`)", "", text)  # emphasis and code markers are not text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every #anchor GitHub renders for `path`: heading slugs (a repeated one gains -1, -2, ...)
    and explicit `<a name=...>` / `<a id=...>`."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    found: set[str] = set(HTML_ANCHOR.findall(text))
    seen: dict[str, int] = {}
    for heading in HEADING.findall(text):
        slug = github_slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(path: Path) -> list[str]:
    """Links in `path` to a repository file that does not exist, or to an #anchor its target
    does not have. Links with a URL scheme (https:, mailto:) are not checked."""
    problems: list[str] = []
    for target in INLINE_LINK.findall(without_code(path.read_text(encoding="utf-8"))):
        if URL_SCHEME.match(target):
            continue
        file_part, _, anchor = unquote(target).partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            problems.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{target}: {linked.name} has no heading with that anchor")
    return problems


def test_github_anchors_follow_githubs_rules(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n## 10. Agent mode against server mode\n### Without Docker: `make demo`\n"
        "## OCI Monitoring: GPUs, instances and the gateway\n## Grafana's admin password\n"
        "## Title\n```\n# not a heading\n```\n",
        encoding="utf-8",
    )
    assert anchors(page) == {
        "title",
        "10-agent-mode-against-server-mode",
        "without-docker-make-demo",
        "oci-monitoring-gpus-instances-and-the-gateway",
        "grafanas-admin-password",
        "title-1",
    }


def test_the_link_check_finds_a_broken_file_or_anchor(tmp_path):
    (tmp_path / "other.md").write_text("## 10. Agent mode\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "See [ten](other.md#10-agent-mode), [seven](other.md#7-agent-mode),\n"
        "[gone](missing.md), [here](#see), [web](https://example.com/#x) and "
        "`[code](#not-a-link)`.\n# See\n",
        encoding="utf-8",
    )
    assert broken_links(page) == [
        "other.md#7-agent-mode: other.md has no heading with that anchor",
        "missing.md: no such file",
    ]


def test_the_markdown_files_are_found():
    names = {path.relative_to(ROOT).as_posix() for path in markdown_files()}
    assert {"README.md", "docs/performance.md", "docs/image.md"} <= names


@pytest.mark.parametrize(
    "path", markdown_files(), ids=lambda path: path.relative_to(ROOT).as_posix()
)
def test_every_link_to_a_repository_file_and_anchor_resolves(path):
    assert not broken_links(path), f"{path.relative_to(ROOT)}: " + "; ".join(broken_links(path))
