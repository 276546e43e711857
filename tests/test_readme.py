"""The README's set-up commands are the ones CI runs, so they cannot drift apart."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _last_command(path: Path) -> str:
    return [line for line in path.read_text().splitlines() if line.strip()][-1].strip()


def test_ci_runs_the_readme_test_command_verbatim():
    assert _last_command(ROOT / ".ci" / "run") in (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_setup_commands():
    readme = (ROOT / "README.md").read_text()
    first_blocks = readme.split("```")[1:4:2]
    assert "msta train" in first_blocks[0] and "pytest" in first_blocks[1]
