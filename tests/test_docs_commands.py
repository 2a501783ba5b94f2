"""Every scenesweep command the README and docs/ show in a code block parses with the real CLI parser, so no
page goes stale when a flag is renamed or removed (argparse-level: nothing runs)."""

from __future__ import annotations

import re
import shlex

import pytest

from orchestrator import build_parser
from tests.conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PREFIXES = ("scenesweep ", "python orchestrator.py ", ".venv/bin/python orchestrator.py ")


def shown_commands() -> list[tuple[str, str]]:
    """(page:line, command) for each scenesweep command line inside a fenced code block."""
    found = []
    for page in PAGES:
        in_block, pending, start = False, "", 0
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if line.lstrip().startswith("```"):
                in_block, pending = not in_block, ""
                continue
            if not in_block:
                continue
            text = line.strip()
            if pending:
                text, pending = pending + " " + text, ""
            else:
                start = number
            if text.endswith("\\"):
                pending = text[:-1].strip()
                continue
            text = re.sub(r"^\$\s+", "", text)
            for prefix in PREFIXES:
                if text.startswith(prefix):
                    found.append((f"{page.relative_to(ROOT)}:{start}", text[len(prefix) :]))
    return found


COMMANDS = shown_commands()


def test_the_docs_show_commands():
    assert len(COMMANDS) >= 10


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_every_command_in_the_docs_parses(where, command):
    # A shell comment, `;`, a pipe or a redirection ends the command; `...` stands for "more flags".
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = []
    for word in lexer:
        if set(word) <= set(";|&<>()"):
            break
        if word != "...":
            words.append(word)
    try:
        build_parser().parse_args(words)
    except SystemExit as exc:
        pytest.fail(f"{where}: `scenesweep {command}` does not parse (exit {exc.code})")
