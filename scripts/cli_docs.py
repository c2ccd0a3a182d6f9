"""Write docs/cli.md from the real ``expportrait`` argparse parser, so the flag reference cannot
drift from the code.

    python scripts/cli_docs.py           # (re)write docs/cli.md
    python scripts/cli_docs.py --check   # exit 1 with one line when docs/cli.md is out of date

Each subcommand gets a heading, its one-line description and its ``--help`` text, formatted at a
fixed width (``WIDTH``), so the page does not depend on the terminal it was made in. argparse's
wording changes a little between Python versions ("options:" since 3.10); make the page with the
project's ``.venv``. ``tests/test_cli_docs.py`` runs the same comparison as ``--check``.
"""
from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "cli.md"
WIDTH = 100  # columns of every --help block

HEADER = """\
# Command-line reference

Every subcommand of the `expportrait` console script (`python -m expportrait` works too) with its
full `--help`. This page is generated from the parser by `python scripts/cli_docs.py`; do not edit
it by hand (`tests/test_cli_docs.py` fails when it is out of date). The same text is printed by
`expportrait COMMAND --help`; the [README](../README.md#commands) has the one-line overview.
"""


def _fixed_width(parser: argparse.ArgumentParser) -> None:
    """Make ``parser`` format its help at ``WIDTH`` columns whatever the terminal says."""
    parser.formatter_class = functools.partial(parser.formatter_class, width=WIDTH)


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """-> [(name, one-line help, subparser)] in the order ``--help`` lists them ([] if none)."""
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not actions:
        return []
    helps = {choice.dest: choice.help or "" for choice in actions[0]._choices_actions}
    return [(name, helps.get(name, ""), sub) for name, sub in actions[0].choices.items()]


def _section(parser: argparse.ArgumentParser, text: str, level: int) -> list[str]:
    """-> the heading, one-liner and --help block of ``parser``, then those of its own
    subcommands one heading level down (none today)."""
    _fixed_width(parser)
    head = "#" * level + f" {parser.prog}\n\n" + (f"{text}\n\n" if text else "")
    out = [head + "```text\n" + parser.format_help().rstrip() + "\n```\n"]
    for _, sub_text, sub in _subcommands(parser):
        out += _section(sub, sub_text, level + 1)
    return out


def render() -> str:
    """-> the text of docs/cli.md for the parser as the code builds it now."""
    src = str(ROOT / "src")
    sys.path.insert(0, src)  # the working tree's package, installed or not
    try:
        from expportrait.cli import build_parser
    finally:
        sys.path.remove(src)
    parser = build_parser()  # load=None: every command's add_arguments
    links = [f"- [`{sub.prog}`](#{sub.prog.replace(' ', '-')}): {text}"
             for _, text, sub in _subcommands(parser)]
    _fixed_width(parser)
    top = "## expportrait\n\n```text\n" + parser.format_help().rstrip() + "\n```\n"
    sections = [part for _, text, sub in _subcommands(parser) for part in _section(sub, text, 2)]
    return "\n".join([HEADER, "## Commands\n", *links, "", top, *sections])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="write docs/cli.md from the expportrait parser")
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 if docs/cli.md differs from what would be written")
    args = ap.parse_args(argv)
    text = render()
    rel = OUT.relative_to(ROOT)
    if args.check:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{rel} is out of date: run python scripts/cli_docs.py")
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
