"""The docs that must not go stale: docs/cli.md is what scripts/cli_docs.py makes from the real
parser, and the README stays a short front page with its picture and its two set-up commands."""
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PICTURE = "docs/images/strip.png"
SETUP_COMMANDS = (  # the README's two set-up commands, word for word
    "bash scripts/setup.sh && .venv/bin/expportrait demo --out out/demo",
    "bash scripts/setup.sh --browser && .venv/bin/python -m pytest -q",
)


def _cli_docs():
    spec = importlib.util.spec_from_file_location("cli_docs", ROOT / "scripts" / "cli_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_md_is_generated_from_the_parser():
    cli_docs = _cli_docs()
    assert cli_docs.OUT.read_text(encoding="utf-8") == cli_docs.render(), \
        "docs/cli.md is out of date: run .venv/bin/python scripts/cli_docs.py"


def test_cli_md_has_every_command():
    from expportrait.cli import COMMANDS

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for name in COMMANDS:
        assert f"\n## expportrait {name}\n" in text
        assert f"usage: expportrait {name} " in text


def test_check_flag_reports_a_stale_page(tmp_path, monkeypatch, capsys):
    cli_docs = _cli_docs()
    stale = tmp_path / "cli.md"
    stale.write_text("old\n", encoding="utf-8")
    monkeypatch.setattr(cli_docs, "OUT", stale)
    monkeypatch.setattr(cli_docs, "ROOT", tmp_path)
    assert cli_docs.main(["--check"]) == 1
    assert capsys.readouterr().out.strip().count("\n") == 0  # one line
    assert stale.read_text(encoding="utf-8") == "old\n"        # --check writes nothing
    assert cli_docs.main([]) == 0 and cli_docs.main(["--check"]) == 0


def test_readme_is_a_short_front_page():
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move detail to docs/"
    assert f"]({PICTURE})" in text and (ROOT / PICTURE).is_file()
    bash_lines = {line.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S)
                  for line in block.splitlines()}
    for command in SETUP_COMMANDS:
        assert command in bash_lines, f"README.md lost its set-up command: {command}"
    assert "docs/cli.md" in text


def test_readme_links_resolve():
    text = README.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (ROOT / target).exists(), f"README.md links to a missing {target}"
