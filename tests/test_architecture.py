"""The package's shape is a property to keep: one-way imports, no streamlit, no colliding module names."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import medattn

PACKAGE = Path(medattn.__file__).parent
# The flow of a scan, bottom to top: a module may import its own layer and the layers below it.
LAYERS = {
    "errors": 0, "assets": 0, "installation": 0, "access": 0, "runtime": 0, "benchmark": 1, "scan": 1, "model": 2,
    "explain": 3, "review": 4, "batch": 4, "training": 5, "study": 5, "pacs": 5, "cluster": 5, "screens": 6,
    "cli": 6, "__main__": 7,
}  # fmt: skip


def modules() -> dict[str, Path]:
    """'medattn.scan.load' -> its file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(path: Path, known: dict[str, Path]) -> set[str]:
    """Every module this file imports, at module level or inside functions, resolved to a known module."""
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                if node.module == "medattn" and alias.name in medattn._PUBLIC:
                    candidate = medattn._PUBLIC[alias.name]  # the facade re-exports; count the real module
                targets.add(candidate if candidate in known else node.module)
    return targets


def layer(module: str) -> int:
    parts = module.split(".")
    return 0 if len(parts) == 1 else LAYERS[parts[1]]  # the bare root only holds RESEARCH_NOTICE


def test_nothing_in_medattn_imports_streamlit():
    known = modules()
    for module, path in known.items():
        assert not {t for t in imported(path, known) if t.split(".")[0] == "streamlit"}, module


def test_imports_flow_one_way_from_scan_to_model_to_explain_to_review():
    known = modules()
    for module, path in known.items():
        if module == "medattn":
            continue  # the public facade, which imports lazily from every layer
        for target in imported(path, known):
            if target.startswith("medattn"):
                assert layer(target) <= layer(module), f"{module} imports {target}, a later step of the flow"


def test_there_is_no_import_cycle_between_modules():
    known = modules()
    graph = {m: {t for t in imported(p, known) if t in known and t != "medattn"} for m, p in known.items()}
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in graph[module]:
            assert state.get(target) != "open", " -> ".join([*trail, module, target])
            if target not in state:
                visit(target, [*trail, module])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [])


def test_no_two_modules_share_a_name_and_none_shadows_the_standard_library():
    names = [path.stem for path in PACKAGE.rglob("*.py") if path.stem not in ("__init__", "__main__")]
    packages = [path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()]
    assert len(names + packages) == len(set(names + packages)), sorted(names + packages)
    assert not set(names + packages) & set(sys.stdlib_module_names)


def test_the_public_api_imports_from_the_package_root():
    from medattn import Heatmap, MedattnError, Prediction, Predictor, Scan, ScanError, load_scan

    assert issubclass(ScanError, MedattnError)
    assert {Heatmap, Prediction, Predictor, Scan}.isdisjoint({None}) and callable(load_scan)
    assert sorted(medattn.__all__) == sorted(["RESEARCH_NOTICE", *medattn._PUBLIC])


def test_every_error_a_user_can_trigger_is_a_medattn_error():
    from medattn import errors

    family = [value for value in vars(errors).values() if isinstance(value, type) and issubclass(value, Exception)]
    assert len(family) >= 7 and all(issubclass(error, errors.MedattnError) for error in family)
