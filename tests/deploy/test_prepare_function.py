"""scripts/prepare_function.py: the kn func project written from a function's sources."""

from __future__ import annotations

import tomllib
from pathlib import Path

import kn_func_build as kfb
import pytest

prepare_function = kfb.prepare_function


@pytest.fixture
def fake_functions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A functions/ directory with one function `demo`, so packaging is tested on its own."""
    functions = tmp_path / "functions"
    (functions / "demo").mkdir(parents=True)
    (functions / "demo" / "func.yaml").write_text("specVersion: 0.36.0\nname: demo\n")
    (functions / "demo" / "main.py").write_text("app = None\n")
    (functions / "nomain").mkdir()
    (functions / "nomain" / "func.yaml").write_text("specVersion: 0.36.0\nname: nomain\n")
    monkeypatch.setattr(prepare_function, "FUNCTIONS_DIR", functions)
    return functions


def test_dependencies_swap_functions_framework_for_func_python() -> None:
    deps = prepare_function.kn_func_dependencies()
    names = [prepare_function._project_name(d) for d in deps]
    assert "functions-framework" not in names
    assert prepare_function.FUNC_PYTHON in deps and prepare_function.CLOUDEVENTS_2 in deps
    assert names.count("cloudevents") == 1
    # Everything else the functions import at run time comes along unchanged.
    root = tomllib.loads((prepare_function.ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert {d for d in root if prepare_function._project_name(d) not in ("functions-framework", "cloudevents")} <= set(
        deps
    )


def test_pyproject_is_an_installable_project_named_function(tmp_path: Path) -> None:
    project = tomllib.loads(prepare_function.pyproject_text("demo"))
    assert project["project"]["name"] == "function"  # kn func's scaffolding depends on "function"
    assert project["build-system"]["build-backend"] == "hatchling.build"
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["function", "shared"]
    assert project["tool"]["hatch"]["build"]["ignore-vcs"] is True


def test_prepare_writes_the_layout_kn_func_builds(fake_functions: Path, tmp_path: Path) -> None:
    out = prepare_function.prepare("demo", tmp_path / "out")
    assert (out / "func.yaml").read_text() == (fake_functions / "demo" / "func.yaml").read_text()
    assert (out / "function" / "main.py").read_text() == "app = None\n"
    init = (out / "function" / "__init__.py").read_text()
    assert "def new()" in init and 'new_instance("function.main")' in init
    assert (out / "shared" / "config.py").is_file() and (out / "shared" / "runtime" / "asgi.py").is_file()
    assert (out / prepare_function.MARKER).is_file()
    # Preparing again replaces the previous output.
    (out / "function" / "stale.py").write_text("")
    prepare_function.prepare("demo", out)
    assert not (out / "function" / "stale.py").exists()


def test_prepare_refuses_to_delete_what_it_did_not_make(fake_functions: Path, tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(prepare_function.PrepareError, match="not made by this script"):
        prepare_function.prepare("demo", precious)
    assert (precious / "notes.txt").read_text() == "keep me"
    with pytest.raises(prepare_function.PrepareError, match="outside the sources"):
        prepare_function.prepare("demo", prepare_function.ROOT)


def test_prepare_explains_missing_pieces(fake_functions: Path, tmp_path: Path) -> None:
    with pytest.raises(prepare_function.PrepareError, match="no function 'nope'.*demo, nomain"):
        prepare_function.prepare("nope", tmp_path / "x")
    with pytest.raises(prepare_function.PrepareError, match="main.py is missing"):
        prepare_function.prepare("nomain", tmp_path / "y")


def test_cli_reports_errors_without_a_traceback(fake_functions: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert prepare_function.main(["nope"]) == 1
    assert "prepare_function: no function 'nope'" in capsys.readouterr().err


def test_the_stocks_image_holds_dbt_and_its_project(tmp_path: Path) -> None:
    # The gold tick runs `dbt build`: the stocks function's one environment carries dbt-core and
    # dbt-postgres (the root pyproject's `dbt` extra), and its package a copy of dbt/stocks.
    project = tomllib.loads(prepare_function.pyproject_text("stocks"))["project"]
    names = {prepare_function._project_name(d) for d in project["dependencies"]}
    assert {"dbt-core", "dbt-postgres", "func-python"} <= names
    root = tomllib.loads((prepare_function.ROOT / "pyproject.toml").read_text())["project"]
    assert set(root["optional-dependencies"]["dbt"]) <= set(project["dependencies"])
    # No other function pays for dbt.
    assert "dbt-core" not in {prepare_function._project_name(d) for d in prepare_function.kn_func_dependencies()}
    out = prepare_function.prepare("stocks", tmp_path / "stocks")
    packaged = out / "shared" / "stocks" / "dbt_project"
    assert (packaged / "dbt_project.yml").read_text() == (
        prepare_function.ROOT / "dbt" / "stocks" / "dbt_project.yml"
    ).read_text()
    assert (packaged / "models" / "gold" / "gold_kpi.sql").is_file()
    assert (out / "shared" / "stocks" / "dbt_worker.py").is_file()
    assert not (packaged / "target").exists()
