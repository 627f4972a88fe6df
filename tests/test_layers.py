"""The package's folders follow the data flow (chem -> featurizers -> data -> nn -> train ->
methods -> cli): no module imports a higher layer, not even inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import molgraph

# equal ranks may import each other; `models` is the deprecated re-export of the property method
RANK = {"io": 0, "registry": 0, "chem": 1, "conformers": 2, "featurizers": 2, "data": 3, "nn": 4,
        "train": 5, "methods": 6, "models": 7, "cli": 7}
ROOT = Path(molgraph.__file__).parent


def _upward_imports(path: Path, source: str | None = None) -> list[str]:
    layer = path.relative_to(ROOT).parts[0].removesuffix(".py")
    found = []
    text = path.read_text(encoding="utf-8") if source is None else source
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names if node.module == "molgraph"]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "molgraph" and len(parts) > 1 and RANK.get(parts[1], -1) > RANK[layer]:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} ({layer}) imports {name}")
    return found


def test_every_folder_is_a_known_layer():
    folders = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in ROOT.glob("*.py") if p.stem != "__init__"}
    assert folders | modules <= set(RANK), sorted((folders | modules) - set(RANK))


def test_no_module_imports_a_higher_layer():
    offences = [o for path in sorted(ROOT.rglob("*.py")) if path.parent != ROOT or path.stem in RANK
                for o in _upward_imports(path)]
    assert not offences, "\n".join(offences)


def test_the_check_sees_an_upward_import():
    module = ROOT / "chem" / "parse.py"
    source = module.read_text(encoding="utf-8") + "\n\ndef _f():\n    from molgraph.cli.main import main\n"
    assert not _upward_imports(module)
    assert [o.split(" imports ")[1] for o in _upward_imports(module, source)] == ["molgraph.cli.main"]
