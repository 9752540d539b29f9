"""Docs that cannot drift: every command line in README.md and docs/*.md that calls one of the project's
scripts parses with that script's own argument parser (nothing is run), every relative link and every
`results/...` path resolves, and the README's "what reproduces" table equals what the results files give."""
from __future__ import annotations

import glob
import importlib.util
import re
import shlex
import sys
from functools import cache
from pathlib import Path

import pytest

from tools import reproduce_table

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_STOP = {"&", "&&", "|", "||", ";", ">", ">>", "2>&1", "<"}
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
RESULTS_PATH = re.compile(r"(?<![\w./-])results/[\w./*{},-]*[\w*}/]")


def code_lines(text: str) -> list[str]:
    """Candidate command lines: each line of a fenced block (a leading `> ` or `$ ` prompt removed, `\\`
    continuations joined) and each inline code span (which may wrap over lines in Markdown)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif fenced:
            lines.append(re.sub(r"^\s*[>$]\s", "", line))
    joined = "\n".join(lines).replace("\\\n", " ").splitlines()
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    spans = [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose)]
    return joined + spans


def script_path(token: str) -> Path | None:
    """The project file a command token names (`main_mlp.py`, `tools/x.py`, or a `-m` module), else None."""
    path = REPO / (token.replace(".", "/") + ".py" if not token.endswith(".py") else token)
    return path if path.is_file() and REPO in path.resolve().parents else None


def project_commands(text: str) -> list[tuple[Path, list[str], str]]:
    """(script, its arguments, the line) for every line that runs a project script: through python,
    python -m, torchrun or srun, or written as the script's path followed by its flags."""
    found = []
    for line in code_lines(text):
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            continue
        for i, token in enumerate(tokens):
            module = i > 0 and tokens[i - 1] == "-m"
            if not (token.endswith(".py") or module):
                continue
            launched = (i == 0 and len(tokens) > 1) or module or tokens[i - 1] in {"python", "python3", "nohup"} or "torchrun" in tokens[:i]
            path = script_path(token)
            if path is not None and launched:
                args = tokens[i + 1:]
                stops = [j for j, t in enumerate(args) if t in SHELL_STOP]
                found.append((path, args[:stops[0]] if stops else args, line))
            break
    return found


@cache
def parser_of(path: Path):
    """The script's `get_args_parser()`, its module imported under its dotted path (not run as __main__),
    with its folder on sys.path as when it runs (the tools/3dident scripts import their siblings)."""
    name = ".".join(path.relative_to(REPO).with_suffix("").parts)
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        sys.modules[name] = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.parent))
        try:
            spec.loader.exec_module(sys.modules[name])
        finally:
            sys.path.remove(str(path.parent))
    return sys.modules[name].get_args_parser()


def parse_error(path: Path, args: list[str]) -> str | None:
    """None if `args` parse with the script's own parser, else argparse's message."""
    parser, messages = parser_of(path), []

    def error(message: str):
        messages.append(message)
        raise SystemExit(2)

    parser.error = error
    try:
        parser.parse_args(args)
    except SystemExit as e:
        if e.code not in (0, None):
            return messages[0] if messages else f"exit {e.code}"
    return None


def bad_commands(text: str) -> list[str]:
    return [f"{line}\n    -> {error}" for path, args, line in project_commands(text)
            if (error := parse_error(path, args)) is not None]


def expand(path: str) -> list[str]:
    """Brace alternatives `{a,b}` expanded, as a shell would."""
    m = re.search(r"\{([^{}]*)\}", path)
    return [p for alt in m.group(1).split(",") for p in expand(path[:m.start()] + alt + path[m.end():])] \
        if m else [path]


def missing_paths(text: str, page: Path) -> list[str]:
    """Relative links that point nowhere (relative to the page) and `results/...` paths that match no file."""
    missing = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (page.parent / target.split("#")[0]).exists():
            missing.append(target)
    for path in RESULTS_PATH.findall(text):
        missing += [p for p in expand(path.rstrip(".")) if not glob.glob(str(REPO / p))]
    return missing


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_every_command_parses_with_its_scripts_parser(page):
    assert bad_commands(page.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_every_link_and_results_path_resolves(page):
    assert missing_paths(page.read_text(encoding="utf-8"), page) == []


def test_the_readme_reproduce_table_is_current():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert reproduce_table.replace_table(text, reproduce_table.render()) == text


def test_the_docs_checks_catch_a_broken_flag_link_path_and_number(tmp_path):
    good = "```bash\npython main_mlp.py --n 5 --p 1 &\n```\nor `python -m tools.kitti_masks.make_walkers --seed 0`."
    assert [p.name for p, _, _ in project_commands(good)] == ["main_mlp.py", "make_walkers.py"]
    assert bad_commands(good) == []
    assert len(bad_commands(good.replace("--n 5", "--n-latents 5"))) == 1  # a renamed flag
    assert len(bad_commands("`torchrun --nproc_per_node 2 main_3dident.py --no-such-flag`")) == 1
    page = REPO / "docs" / "page.md"
    assert missing_paths("[a](synthetic.md) `results/table1_n10/{runs.csv,table1.md}`", page) == []
    assert missing_paths("[a](synthetic2.md) and results/table1_n10/nothing.csv.", page) == \
        ["synthetic2.md", "results/table1_n10/nothing.csv"]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    number = re.search(r"MCC (0\.\d{3})", reproduce_table.render()).group(1)
    typed_over = readme.replace(f"MCC {number}", "MCC 0.999", 1)  # a number edited by hand
    assert typed_over != readme
    assert reproduce_table.replace_table(typed_over, reproduce_table.render()) != typed_over
