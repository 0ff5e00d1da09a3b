"""Plugin discovery: built-ins, --plugin modules and real installed distributions."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kdbench.errors import DuplicateNameError, KdbenchError, UnknownNameError
from kdbench.plugins import load_plugins

ROOT = Path(__file__).resolve().parents[1]


def write_module(tmp_path, monkeypatch, name, body):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name, None)


def test_builtins_register_through_the_hooks(plugins):
    assert set(plugins.methods.names()) >= {"scratch", "hinton", "fitnets", "at", "dkd", "e2kd", "medtex"}
    assert "synthetic" in plugins.datasets and "tinycnn" in plugins.models
    assert plugins.methods.get("hinton").provider.endswith("(built-in)")
    assert plugins.methods.get("hinton").help.startswith("Soft-target KD")


def test_local_plugin_module_registers_components(tmp_path, monkeypatch):
    write_module(tmp_path, monkeypatch, "kdb_local_plugin", """
        import kdbench
        from kdbench.distill.methods.hinton import Hinton

        class Warm(Hinton):
            '''Hinton at T=8.'''
            defaults = {"T": 8.0, "alpha": 0.9}

        @kdbench.hookimpl
        def register_methods(register):
            register("warm", Warm, help="Hinton KD, hotter")
    """)
    plugins = load_plugins(["kdb_local_plugin"])
    comp = plugins.methods.get("warm")
    assert comp.provider == "kdb_local_plugin" and comp.help == "Hinton KD, hotter"


def test_duplicate_name_names_both_providers(tmp_path, monkeypatch):
    write_module(tmp_path, monkeypatch, "kdb_dup_plugin", """
        import kdbench
        @kdbench.hookimpl
        def register_methods(register):
            register("hinton", object)
    """)
    with pytest.raises(DuplicateNameError, match=r"'hinton' is registered twice: by kdbench [0-9.]+ \(built-in\) and by kdb_dup_plugin"):
        load_plugins(["kdb_dup_plugin"])


def test_unknown_name_lists_choices_and_suggests_the_closest(plugins):
    with pytest.raises(UnknownNameError) as err:
        plugins.methods.get("hintn")
    msg = str(err.value)
    assert "unknown method 'hintn'; did you mean 'hinton'?" in msg
    assert "fitnets" in msg and "medtex" in msg


def test_plugin_module_that_does_not_import_is_a_clear_error():
    with pytest.raises(KdbenchError, match="--plugin no_such_module_xyz: cannot import it"):
        load_plugins(["no_such_module_xyz"])


def pip_install_target(src: Path, target: Path):
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(src)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def installed_plugins(tmp_path_factory):
    """The template plugin and a broken plugin, really installed (pip) into a folder."""
    target = tmp_path_factory.mktemp("site")
    work = tmp_path_factory.mktemp("src")
    pip_install_target(ROOT / "plugins" / "kdbench-plugin-template", target)
    broken = work / "broken"
    (broken / "kdbench_broken").mkdir(parents=True)
    (broken / "kdbench_broken" / "__init__.py").write_text("import a_dependency_that_is_missing\n")
    (broken / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "kdbench-broken"
        version = "0.0.1"
        [project.entry-points.kdbench]
        broken = "kdbench_broken"
        [tool.setuptools]
        packages = ["kdbench_broken"]
    """))
    pip_install_target(broken, target)
    return target


def run_cli(args, site):
    env = dict(os.environ, PYTHONPATH=str(site), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "kdbench.cli", *args], capture_output=True, text=True, env=env)


def test_installed_distribution_is_found_through_the_entry_point_group(installed_plugins):
    out = run_cli(["plugins"], installed_plugins)
    assert out.returncode == 0, out.stderr
    assert "logitmatch" in out.stdout
    assert "kdbench-logitmatch 0.1.0" in out.stdout
    assert "hinton" in out.stdout  # the built-ins are still there


def test_a_broken_plugin_is_listed_with_its_error_and_the_rest_load(installed_plugins):
    out = run_cli(["plugins"], installed_plugins)
    assert "broken plugin" in out.stdout and "a_dependency_that_is_missing" in out.stdout
    assert "logitmatch" in out.stdout
