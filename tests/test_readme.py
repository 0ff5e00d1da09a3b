"""The README's copy-paste commands are the ones CI runs and the ones that exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_starts_with_exactly_two_commands_install_run_and_install_test():
    run, test = readme_commands()[:2]
    assert run.endswith("kdbench run --methods medtex,hinton,fitnets")
    assert "pip install -e ." in run
    assert test.endswith("pytest") and '".[test,ray]"' in test
    assert "./plugins/kdbench-gradcam-zoo" in test and "./plugins/kdbench-mlflow" in test


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert readme_commands()[1] in ci
