"""Load a function's `main.py` by path (there is no `functions` package) and serve it in tests."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from shared.runtime.app import FunctionApp
from shared.runtime.resources import Resources

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"


def load_function_module(name: str) -> ModuleType:
    """Import `functions/<name>/main.py` once per session as module `function_<name>_main`."""
    module_name = f"function_{name}_main"
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = FUNCTIONS_DIR / name / "main.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def function_app(name: str, resources: Resources) -> FunctionApp:
    """The function's own `app` (name, handler, readiness needs), running on `resources`."""
    app = load_function_module(name).app
    if not isinstance(app, FunctionApp):
        raise TypeError(f"functions/{name}/main.py must define `app`, a FunctionApp")
    return dataclasses.replace(app, resources=resources)
