"""The package layout shows the flow: stage packages import only the stages below them."""

import ast
from pathlib import Path

import kdbench
import kdbench.api

ROOT = Path(kdbench.__file__).parent
#: The flow of a job, bottom to top. The face modules (errors, registry, hookspecs) are below everything;
#: cli, api, plugins, builtins and testing sit on top and may import anything.
ORDER = ["data", "evaluate", "distill", "explain", "config", "run", "report"]
BASE = {"errors", "registry", "hookspecs", "__init__", "__version__"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kdbench"):
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("kdbench"))
    return names


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_stage_imports_only_the_stages_below_it():
    wrong = []
    for stage in ORDER:
        for path in (ROOT / stage).rglob("*.py"):
            for name in _imports(path):
                other = _stage(name)
                if other in BASE or other == stage or other is None:
                    continue
                if other == "plugins" and stage in ("config", "run"):  # the registries a run resolves names in
                    continue
                if other not in ORDER or ORDER.index(other) > ORDER.index(stage):
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_the_data_stage_imports_no_other_stage():
    for path in (ROOT / "data").rglob("*.py"):
        assert all(_stage(n) in BASE | {"data", None} for n in _imports(path)), path


def test_the_top_level_is_the_face_only():
    modules = sorted(p.stem for p in ROOT.glob("*.py"))
    # launcher: the console script, which imports cli so that Ctrl-C during the imports is one line
    assert modules == ["__init__", "api", "cli", "errors", "hookspecs", "launcher", "plugins", "registry", "testing"]


def test_every_public_api_name_imports():
    for name in kdbench.api.__all__:
        assert getattr(kdbench.api, name) is not None, name
