"""Extract the commands a user can copy from README.md and docs/*.md (used by test_doc_commands.py).

What counts as a command (the rule, applied to README.md and every docs/*.md):

1. every line of a fenced block tagged ``sh``, ``bash``, ``shell`` or ``console``, after joining
   lines that end in ``\\``, removing a leading ``$ `` prompt and a trailing ``# comment``;
   blank and comment-only lines are not commands;
2. a line of an untagged or ``text`` fenced block, and an inline code span (single backticks),
   when its first word (after ``VAR=value`` assignments) is a program in ``PROGRAMS`` or a path
   to one (``.venv/bin/hmmpar``, ``./x``), followed by at least one argument.
   ``hmmpar: error: ...`` (a message) and ``hmmpar`` alone (a name) are not commands.

Fenced ``toml`` and ``python`` blocks are data and code, not commands (a command that runs such a
block, like ``python example.py``, is a command by rule 2).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELL_TAGS = {"sh", "bash", "shell", "console"}
PROSE_TAGS = {"", "text"}
PROGRAMS = {"mpirun", "mpiexec", "srun", "sbatch", "salloc", "make", "python", "python3", "pip", "pip3",
            "pytest", "hmmpar", "apt-get", "apt", "conda", "spack", "module", "bash", "sh", "cd",
            "export", "source", ".", "git", "gmsh", "kill", "scancel"}
FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class Command:
    """One command as written in the docs and the place it is written."""

    text: str
    file: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def doc_files(root: Path = ROOT) -> list[Path]:
    """README.md and docs/*.md, in a fixed order."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def strip_comment(line: str) -> str:
    """``line`` without a trailing shell comment (a ``#`` outside quotes that starts a word)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.strip()


def normalize(text: str) -> str:
    """Runs of blanks outside quotes become one blank (the table keys do not depend on alignment)."""
    out, quote = [], None
    for ch in text.strip():
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch.isspace() and out and out[-1] == " ":
            continue
        out.append(" " if ch.isspace() and not quote else ch)
    return "".join(out)


def looks_like_command(text: str) -> bool:
    """Rule 2: the first word (after VAR=value) is a program, and there is an argument."""
    words = text.split()
    while words and ASSIGN.match(words[0]):
        words = words[1:]
    if len(words) < 2:
        return False
    first = words[0]
    return first in PROGRAMS or first.startswith((".venv/bin/", "./", "~/")) and not first.endswith("/")


def extract(path: Path, root: Path = ROOT) -> list[Command]:
    """The commands in one Markdown file, in order."""
    rel = path.relative_to(root).as_posix()
    out: list[Command] = []
    tag = None  # None: outside a fence; else the fence's tag
    pending, pending_line = "", 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = FENCE.match(line)
        if fence:
            tag = fence.group(2).lower() if tag is None else None
            continue
        if tag is None:
            for span in INLINE.findall(line):
                span = span.strip()
                if looks_like_command(span):
                    out.append(Command(span, rel, number))
        elif tag in SHELL_TAGS:
            text = line.strip()
            if text.startswith("$ "):
                text = text[2:]
            if not pending:
                pending_line = number
            if text.endswith("\\"):
                pending += text[:-1].rstrip() + " "
                continue
            text = strip_comment(pending + text)
            pending = ""
            if text:
                out.append(Command(normalize(text), rel, pending_line))
        elif tag in PROSE_TAGS:
            text = strip_comment(line)
            if looks_like_command(text):
                out.append(Command(normalize(text), rel, number))
    return out


def all_commands(root: Path = ROOT) -> list[Command]:
    """Every command in README.md and docs/*.md."""
    return [c for path in doc_files(root) for c in extract(path, root)]


def fenced_block(doc: str, marker: str, root: Path = ROOT) -> str:
    """The text of the fenced block in ``doc`` that contains ``marker`` (e.g. a code example)."""
    blocks, current = [], None
    for line in (root / doc).read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            if current is None:
                current = []
            else:
                blocks.append("\n".join(current) + "\n")
                current = None
        elif current is not None:
            current.append(line)
    found = [b for b in blocks if marker in b]
    if len(found) != 1:
        raise LookupError(f"{doc}: {len(found)} fenced blocks contain {marker!r}, expected 1")
    return found[0]


def mpirun_ranks(argv: list[str]) -> int | None:
    """The ``-n``/``-np`` of an mpirun/mpiexec command line, else None."""
    if not argv or Path(argv[0]).name not in ("mpirun", "mpiexec"):
        return None
    for i, word in enumerate(argv[:-1]):
        if word in ("-n", "-np", "--np", "-c"):
            return int(argv[i + 1])
    return None
