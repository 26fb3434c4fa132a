"""Every code block of README.md and docs/**/*.md runs as written, so the docs cannot drift.

Which blocks run, and how, is said in the doc itself by an HTML comment (invisible once
rendered) on the line just before the block; several directives may share one comment,
separated by ``;``:

- ``<!-- doc-test: skip REASON -->``: not run; REASON says why (needs a GPU, a served
  model, downloads, hours of training...).
- ``<!-- doc-test: slow -->``: run only by the slow suite (``make test-slow``).
- ``<!-- doc-test: needs java -->`` (or ``needs cuda``): run only where that is present.
- ``<!-- doc-test: file PATH -->``: the block is the contents of the file PATH (relative to
  the repository root), written, not run; a later block with the same PATH in the same
  chain is appended to it (the doc builds one file from several blocks).
- ``<!-- doc-test: continue -->``: the block goes on from the previous one (the doc chains
  them): it runs in the same scratch checkout, after it, and a Python block continuing a
  Python block runs in one script with it, as a reader pasting both would.
- ``<!-- doc-test: expect TEXT -->``: the block's standard output must contain TEXT.
- ``<!-- doc-test: timeout SECONDS -->``: its time limit (default 120 s, slow 1800 s).

Unmarked ``python`` blocks run with ``.venv/bin/python`` as a script saved in the
repository root; unmarked ``bash``/``sh``/``shell`` blocks run with ``bash -e`` there
(``console`` blocks: their ``$ `` lines). Other languages (``text``, ``json``, ``yaml``,
none) are not run, but one whose first line looks like a command fails the check: tag
it ``bash`` and mark it. Each chain of blocks runs in a fresh temporary copy of the
checkout (the files git tracks or would track, ``.venv`` linked), so no block can dirty
the repository or lean on another unless the doc chains them. A failure names the doc
file and line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN_LANGUAGES = {"python", "bash", "sh", "shell", "console"}
DEFAULT_TIMEOUT = 120
SLOW_TIMEOUT = 1800
NEEDS = {
    "java": lambda: shutil.which("java") is not None,
    "cuda": lambda: _cuda_available(),
}
MARKER = re.compile(r"^\s*<!--\s*doc-test:(.*?)-->\s*$")
FENCE = re.compile(r"^(\s*)```\s*([\w+-]*)\s*$")
# A line that is a command a reader would type (so its block should be ``bash``, marked).
COMMAND = re.compile(
    r"^\s*(\$ )?([A-Z_]+=\S+ )*(\.venv/bin/\S+|make \w|python3?(\.\d+)? |pip |git |vllm |source )"
)
# Set in the scratch copy's environment: a doc block running the test suite (``make
# test``) must not run this test again inside itself.
NESTED = "MENTORGYM_DOC_TEST_NESTED"


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name


@dataclass
class Block:
    doc: Path
    line: int  # the line of the opening fence (1-based)
    language: str
    code: str
    directives: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{rel(self.doc)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.language in RUN_LANGUAGES and "file" not in self.directives

    @property
    def timeout(self) -> int:
        if "timeout" in self.directives:
            return int(self.directives["timeout"])
        return SLOW_TIMEOUT if "slow" in self.directives else DEFAULT_TIMEOUT


def parse_directives(text: str, where: str) -> dict[str, str]:
    """``skip REASON; continue`` -> {"skip": "REASON", "continue": ""}; a bad one raises."""
    directives: dict[str, str] = {}
    # A skip's reason is the rest of the marker, semicolons and all (skip stands alone).
    parts = [text.strip()] if text.strip().startswith("skip") else text.split(";")
    for part in filter(None, (p.strip() for p in parts)):
        name, _, argument = part.partition(" ")
        argument = argument.strip()
        if argument.startswith("(") and argument.endswith(")"):
            argument = argument[1:-1].strip()
        if name in directives:
            raise ValueError(f"{where}: doc-test directive {name!r} given twice")
        if name == "skip" and not re.search(r"[a-z].*\s.*[a-z]", argument, re.I):
            raise ValueError(f"{where}: 'skip' needs a reason of a few words, got {argument!r}")
        elif name == "continue" and argument:
            raise ValueError(f"{where}: 'continue' takes no argument, got {argument!r}")
        elif name == "needs" and argument not in NEEDS:
            raise ValueError(f"{where}: 'needs' takes one of {sorted(NEEDS)}, got {argument!r}")
        elif name == "file" and (
            not argument or argument.startswith("/") or ".." in Path(argument).parts
        ):
            raise ValueError(f"{where}: 'file' needs a path inside the checkout, got {argument!r}")
        elif name == "timeout" and not argument.isdigit():
            raise ValueError(f"{where}: 'timeout' needs whole seconds, got {argument!r}")
        elif name == "expect" and not argument:
            raise ValueError(f"{where}: 'expect' needs the text to find in the output")
        elif name not in ("skip", "slow", "needs", "file", "continue", "timeout", "expect"):
            raise ValueError(
                f"{where}: unknown doc-test directive {name!r} (known: skip, slow, needs, "
                "file, continue, expect, timeout)"
            )
        directives[name] = argument
    return directives


def parse_doc(doc: Path) -> list[Block]:
    """The doc's fenced blocks with their directives; a malformed marker raises ValueError."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    pending: dict[str, str] = {}
    pending_line = 0
    number = 0
    while number < len(lines):
        line = lines[number]
        where = f"{rel(doc)}:{number + 1}"
        if "doc-test" in line and not MARKER.match(line):
            raise ValueError(f"{where}: malformed doc-test marker {line.strip()!r}")
        marker = MARKER.match(line)
        fence = FENCE.match(line)
        if marker:
            for name, argument in parse_directives(marker.group(1), where).items():
                if name in pending:
                    raise ValueError(f"{where}: doc-test directive {name!r} given twice")
                pending[name] = argument
            pending_line = number + 1
        elif fence:
            end = number + 1
            while end < len(lines) and not re.match(r"^\s*```\s*$", lines[end]):
                end += 1
            if end == len(lines):
                raise ValueError(f"{where}: code block never closed")
            indent = len(fence.group(1))
            code = "\n".join(text[indent:] for text in lines[number + 1 : end]) + "\n"
            blocks.append(Block(doc, number + 1, fence.group(2).lower(), code, pending))
            pending = {}
            number = end
        elif line.strip() and pending:
            raise ValueError(
                f"{rel(doc)}:{pending_line}: a doc-test marker must come just before its block"
            )
        number += 1
    if pending:
        raise ValueError(f"{rel(doc)}:{pending_line}: a doc-test marker with no block after it")
    return blocks


def check_blocks(blocks: list[Block]) -> None:
    """Every directive makes sense where it is; raises ValueError naming the line if not."""
    previous: Block | None = None
    for block in blocks:
        d = block.directives
        if block.language not in RUN_LANGUAGES and "file" not in d:
            if d:
                raise ValueError(
                    f"{block.where}: a ```{block.language or ''} block is not run: "
                    f"its doc-test marker has no effect"
                )
            first = next((s for s in block.code.splitlines() if s.strip()), "")
            if COMMAND.match(first):
                raise ValueError(
                    f"{block.where}: this ```{block.language or ''} block holds commands "
                    f"({first.strip()!r}): tag it ```bash so the doc test runs it (or marks "
                    "why not)"
                )
            continue
        if "skip" in d and len(d) > 1:
            raise ValueError(f"{block.where}: a skipped block takes no other directive")
        if "file" in d and ({"expect", "timeout"} & d.keys()):
            raise ValueError(f"{block.where}: a 'file' block is written, not run")
        if "continue" in d:
            if previous is None:
                raise ValueError(f"{block.where}: 'continue' needs a run block before it")
            if "slow" in previous.directives and "slow" not in d:
                raise ValueError(f"{block.where}: a block continuing a slow block is slow too")
            if "needs" in d:
                raise ValueError(f"{block.where}: a continuing block has its chain's 'needs'")
        if (block.runs or "file" in d) and "skip" not in d:
            previous = block  # what a 'continue' goes on from: skipped blocks are passed over


@dataclass
class Chain:
    """Blocks that run in one scratch checkout, in order (a block and its continuations)."""

    blocks: list[Block]

    @property
    def id(self) -> str:
        return self.blocks[0].where

    @property
    def skipped(self) -> str | None:
        return self.blocks[0].directives.get("skip")

    @property
    def slow(self) -> bool:
        return any("slow" in b.directives for b in self.blocks)


def chains() -> list[Chain]:
    found: list[Chain] = []
    for doc in doc_files():
        blocks = parse_doc(doc)
        check_blocks(blocks)
        for block in blocks:
            if not block.runs and "file" not in block.directives:
                continue
            if "skip" in block.directives:
                found.append(Chain([block]))
            elif "continue" in block.directives:
                last = next(c for c in reversed(found) if c.skipped is None)
                last.blocks.append(block)
            else:
                found.append(Chain([block]))
    return found


def scratch_checkout(folder: Path) -> Path:
    """A copy of the files git tracks (or would: new, not ignored), with .venv linked."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listing.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    venv = ROOT / ".venv"
    (folder / ".venv").symlink_to(venv.resolve() if venv.exists() else Path(sys.prefix))
    return folder


def padded(blocks: list[Block]) -> str:
    """The blocks' code at their own line numbers (blank lines between), so a traceback's
    line numbers are the doc's."""
    lines: list[str] = []
    for block in blocks:
        lines += [""] * (block.line - len(lines))
        lines += block.code.splitlines()
    return "\n".join(lines) + "\n"


def shell_code(block: Block) -> str:
    if block.language != "console":
        return block.code
    return "".join(s[2:] + "\n" for s in block.code.splitlines() if s.startswith("$ "))


def steps(chain: Chain, slow: bool) -> list[list[Block]]:
    """The chain's work in order: file blocks, shell blocks, and Python scripts (a Python
    block continuing a Python block, run or file, shares its script); slow blocks only
    when ``slow``."""
    work: list[list[Block]] = []
    for block in chain.blocks:
        if "slow" in block.directives and not slow:
            continue
        if (
            block.language == "python"
            and "continue" in block.directives
            and work
            and work[-1][-1].language == "python"
        ):
            work[-1].append(block)
        else:
            work.append([block])
    return work


def environment(checkout: Path) -> dict[str, str]:
    env = dict(os.environ)
    # As a reader runs them: the scripts and tools put the checkout they are in (here the
    # copy) first on sys.path themselves; a PYTHONPATH of the caller's would point elsewhere.
    env.pop("PYTHONPATH", None)
    env.setdefault("OMP_NUM_THREADS", "1")  # the blocks share the machine with the suite
    env.setdefault("MPLBACKEND", "Agg")
    env[NESTED] = "1"
    return env


def run_step(step: list[Block], checkout: Path, env: dict[str, str], written: set[str]) -> None:
    for block in step:
        if "file" in block.directives:
            path = block.directives["file"]
            target = checkout / path
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("a" if path in written else "w", encoding="utf-8") as handle:
                handle.write(block.code)
            written.add(path)
    if not any(block.runs for block in step):
        return
    first, last = step[0], step[-1]
    if first.language == "python":
        script = checkout / f"doc_test_{first.doc.stem}_{first.line}.py"
        script.write_text(padded(step), encoding="utf-8")
        command = [str(checkout / ".venv" / "bin" / "python"), script.name]
        what = "Python block" + ("s" if len(step) > 1 else "")
    else:
        script = checkout / f"doc_test_{first.doc.stem}_{first.line}.sh"
        script.write_text(shell_code(first), encoding="utf-8")
        command = ["bash", "-e", "-x", script.name]
        what = "shell block"
    where = ", ".join(b.where for b in step)
    timeout = sum(b.timeout for b in step)
    try:
        result = subprocess.run(
            command,
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"{where}: the {what} ran past its {timeout} s limit\n{_tail(error.stderr)}")
    finally:
        script.unlink(missing_ok=True)
    if result.returncode != 0:
        pytest.fail(
            f"{where}: the {what} failed (exit status {result.returncode}; traceback line "
            f"numbers are the doc's)\n--- stdout\n{_tail(result.stdout)}\n--- stderr\n"
            f"{_tail(result.stderr)}",
            pytrace=False,
        )
    expected = last.directives.get("expect")
    if expected and expected not in result.stdout:
        pytest.fail(
            f"{last.where}: the output lacks {expected!r}\n--- stdout\n{_tail(result.stdout)}",
            pytrace=False,
        )


def _tail(text: str | bytes | None, size: int = 4000) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return (text or "")[-size:]


def run_chain(chain: Chain, folder: Path, slow: bool) -> None:
    checkout = scratch_checkout(folder)
    env = environment(checkout)
    written: set[str] = set()
    for step in steps(chain, slow):
        run_step(step, checkout, env, written)


def chain_params(slow: bool) -> list:
    params = []
    try:
        found = chains()
    except ValueError:
        return []  # test_every_doc_block_has_a_known_status names the bad line
    for chain in found:
        marks = []
        if chain.skipped is not None or (slow and not chain.slow):
            continue  # skipped chains are not collected; a fast chain runs in the default suite
        if slow:
            marks.append(pytest.mark.slow)
        needs = chain.blocks[0].directives.get("needs")
        if needs:
            marks.append(pytest.mark.skipif(not NEEDS[needs](), reason=f"needs {needs}"))
            if needs == "java":
                marks.append(pytest.mark.java)
        if not slow and all("slow" in b.directives for b in chain.blocks if b.runs):
            continue  # nothing left for the default suite
        params.append(pytest.param(chain, marks=marks, id=chain.id))
    return params


skip_nested = pytest.mark.skipif(
    os.environ.get(NESTED) == "1", reason="run by a doc block itself (make test in a doc)"
)


@skip_nested
@pytest.mark.parametrize("chain", chain_params(slow=False))
def test_doc_blocks_run(chain: Chain, tmp_path: Path) -> None:
    run_chain(chain, tmp_path, slow=False)


@skip_nested
@pytest.mark.parametrize("chain", chain_params(slow=True))
def test_doc_blocks_run_slow(chain: Chain, tmp_path: Path) -> None:
    run_chain(chain, tmp_path, slow=True)


def test_every_doc_block_has_a_known_status() -> None:
    """Markers are well formed and attached to a block; every block that could run is
    run, or says why not; command lines are not hidden in untagged blocks."""
    assert rel(doc_files()[0]) == "README.md" and len(doc_files()) > 5
    statuses = {"default": 0, "slow": 0, "skip": 0}
    for chain in chains():  # raises ValueError naming the line on a bad marker
        for block in chain.blocks:
            if not block.runs:
                continue
            status = next((s for s in ("skip", "slow") if s in block.directives), "default")
            statuses[status] += 1
    assert statuses["default"] > 10, statuses


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("<!-- doc-test: skip -->\n```bash\nls\n```\n", "needs a reason"),
        ("<!-- doc-test: sloow -->\n```bash\nls\n```\n", "unknown doc-test directive 'sloow'"),
        ("<!-- doc-test: slow -->\n\ntext\n```bash\nls\n```\n", "just before its block"),
        ("<!-- doc-test: slow\n```bash\nls\n```\n", "malformed doc-test marker"),
        ("```\n.venv/bin/python tools/benchmark.py\n```\n", "tag it ```bash"),
        ("```bash\nls\n```\n<!-- doc-test: continue -->\n```text\nx\n```\n", "no effect"),
        (
            "<!-- doc-test: skip (needs a GPU) -->\n```bash\nls\n```\n"
            "<!-- doc-test: continue -->\n```bash\nls\n```\n",
            "needs a run block before it",
        ),
        ("<!-- doc-test: file /etc/x -->\n```python\nx = 1\n```\n", "inside the checkout"),
    ],
)
def test_a_bad_marker_is_one_clear_error(text: str, problem: str, tmp_path: Path) -> None:
    doc = tmp_path / "example.md"
    doc.write_text(text)
    with pytest.raises(ValueError, match=re.escape(problem)):
        check_blocks(parse_doc(doc))
