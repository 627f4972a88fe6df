"""The code on the project's Markdown pages runs, and every name and flag it shows exists.

Pages: ``README.md``, every ``docs/**/*.md`` (the method and area pages, and ``docs/experiments/``
when present) and the READMEs of ``datasets/``, ``models/`` and ``benchmarks/``. So that a renamed
or missing name fails here:

* Every ```python block compiles, and every ``molgraph`` name it imports, or reaches by attributes
  from such an import, resolves, whether or not the block can run here; a name that resolves only
  through a "moved to" deprecation shim (``molgraph.models.X``) fails: the pages show the new paths.
* Every ```python block then runs, statement by statement, in a temporary working directory that
  holds the files the examples read (``my.csv``, made from bundled BACE rows), with the names the
  pages leave to the reader (``smiles_list`` ...) defined and training cut to one epoch. A
  statement that loads a dataset from the data root (HIV alone takes ~30 s to featurize) runs
  only in the ``slow`` test; in the fast one its file is still located and sha256-checked when
  the shared data folder is present, and the statements that use what it would bind are skipped.
* Every inline ``molgraph.x.Y`` name and ``from molgraph.x import Y`` in the prose resolves, and
  every repository path written in inline code exists.
* In shell blocks every ``molgraph COMMAND [ACTION]`` is a command of ``molgraph.cli.main``, every
  flag shown is one of its options, every flag of ``python benchmarks/X.py`` is an option of that
  script, and every ``make`` target is in the Makefile.
* Every relative link on a page points to an existing file (and an ``#anchor`` to a heading of
  it), every page under ``docs/`` can be reached from the README by links, and the README stays a
  front door: under 12,500 characters.
"""

from __future__ import annotations

import argparse
import ast
import csv
import importlib
import importlib.util
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import SHARED_DATA

REPO = Path(__file__).resolve().parents[1]


def _pages() -> list[Path]:
    pages = [REPO / "README.md"]
    if (REPO / "docs").is_dir():
        pages += sorted((REPO / "docs").rglob("*.md"))
    pages += [REPO / d / "README.md" for d in ("datasets", "models", "benchmarks") if (REPO / d / "README.md").is_file()]
    return pages


PAGES = _pages()


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # line of the opening fence
    lang: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def _split_page(page: Path) -> tuple[list[Block], str]:
    """The fenced blocks of a page, and its prose (the text outside them)."""
    blocks, prose, lang, start, body = [], [], None, 0, []
    for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        fence = re.match(r"^```\s*([\w-]*)\s*$", line)
        if lang is None and fence:
            lang, start, body = fence.group(1).lower(), n, []
        elif lang is not None and line.strip() == "```":
            blocks.append(Block(page, start, lang, "\n".join(body) + "\n"))
            lang = None
        elif lang is not None:
            body.append(line)
        else:
            prose.append(line)
    assert lang is None, f"{page}: unclosed code fence at line {start}"
    return blocks, "\n".join(prose)


BLOCKS = [b for p in PAGES for b in _split_page(p)[0]]
PY_BLOCKS = [b for b in BLOCKS if b.lang in ("python", "py")]
SH_BLOCKS = [b for b in BLOCKS if b.lang in ("sh", "bash", "shell", "console")]


def test_the_pages_have_examples():
    # guards the extraction itself: if it found nothing, every test below would pass vacuously
    assert len(PY_BLOCKS) >= 4 and len(SH_BLOCKS) >= 5
    assert any("molgraph.featurizers" in b.text for b in PY_BLOCKS)


# --- names ---------------------------------------------------------------------------------------

def _resolve(dotted: str) -> Any:
    """Import the longest importable module prefix of ``dotted``, then follow the rest as attributes.

    A name that resolves only through a deprecation shim ("molgraph.models.X moved to ...") fails.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DeprecationWarning)
        obj = _resolve_quietly(dotted)
    for w in caught:
        if issubclass(w.category, DeprecationWarning) and re.match(r"molgraph\.\S+ moved to ", str(w.message)):
            raise AssertionError(f"{dotted}: {w.message}; write the new path")
    return obj


def _resolve_quietly(dotted: str) -> Any:
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        module_name = ".".join(parts[:k])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name not in {".".join(parts[:j]) for j in range(1, k + 1)}:
                raise  # the module exists but an import inside it failed
            continue
        for i, attr in enumerate(parts[k:], k):
            if not hasattr(obj, attr):
                raise AssertionError(f"{dotted}: {'.'.join(parts[:i])} has no attribute {attr!r}")
            obj = getattr(obj, attr)
        return obj
    raise AssertionError(f"{dotted}: no such module")


def _attribute_chain(node: ast.Attribute) -> tuple[str, list[str]] | None:
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    return (node.id, attrs[::-1]) if isinstance(node, ast.Name) else None


def _molgraph_names(tree: ast.AST) -> list[str]:
    """Dotted ``molgraph`` names a block imports or reaches by attributes from an imported name."""
    names: list[str] = []
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "molgraph":
                    names.append(alias.name)
                    bound[alias.asname or "molgraph"] = alias.name if alias.asname else "molgraph"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "molgraph":
            for alias in node.names:
                names.append(f"{node.module}.{alias.name}")
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    # a name the block assigns again no longer stands for the import
    stored = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del))}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and (chain := _attribute_chain(node)) and chain[0] in bound:
            if chain[0] not in stored:
                names.append(".".join([bound[chain[0]], *chain[1]]))
    return list(dict.fromkeys(names))


@pytest.mark.parametrize("block", PY_BLOCKS, ids=lambda b: b.id)
def test_python_block_compiles_and_its_names_exist(block: Block):
    tree = ast.parse(block.text, filename=block.id)
    compile(tree, block.id, "exec")
    for name in _molgraph_names(tree):
        _resolve(name)


def test_resolve_fails_on_a_missing_name():
    _resolve("molgraph.nn.GraphNorm")
    with pytest.raises(AssertionError, match="has no attribute 'NoSuchEncoder'"):
        _resolve("molgraph.nn.NoSuchEncoder")
    with pytest.raises(AssertionError, match="no such module"):
        _resolve("nosuchpackage_xyz.thing")
    with pytest.raises(AssertionError, match="moved to molgraph.methods"):
        _resolve("molgraph.models.GraphClassifier")  # the 0.1 path still imports, with a warning
    _resolve("molgraph.methods.graph_classification.GraphClassifier")
    names = _molgraph_names(ast.parse("import molgraph\n"
                                      "from molgraph.methods.graph_classification import GraphClassifier as G\n"
                                      "molgraph.nn.GINEncoder\nG.config\nx = 1\nx.y\n"))
    assert set(names) == {"molgraph", "molgraph.methods.graph_classification.GraphClassifier",
                          "molgraph.nn.GINEncoder", "molgraph.nn",
                          "molgraph.methods.graph_classification.GraphClassifier.config"}


_INLINE = re.compile(r"`([^`\n]+)`")
_DOTTED = re.compile(r"^(molgraph(?:\.[A-Za-z_]\w*)+)")
_FROM_IMPORT = re.compile(r"\bfrom (molgraph[\w.]*) import (\w+)")
# a repository path in inline code; <placeholders>, globs and spaces make it a pattern, not a path
_REPO_PATH = re.compile(r"^(?:molgraph|models|datasets|benchmarks|tests|docs)/[\w./-]*$")
# paths that exist only in a built wheel (pyproject maps datasets/ there)
_NOT_IN_CHECKOUT = {"molgraph/_bundled_datasets/"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_names_and_paths_in_the_prose_exist(page: Path):
    from molgraph.registry import PLUGIN_GROUP

    prose = _split_page(page)[1]
    for span in _INLINE.findall(prose):
        if span == PLUGIN_GROUP:  # the entry-point group "molgraph.plugins": a name, not a module
            continue
        if m := _DOTTED.match(span):
            _resolve(m.group(1))
        for module, name in _FROM_IMPORT.findall(span):
            _resolve(f"{module}.{name}")
        if _REPO_PATH.match(span) and span not in _NOT_IN_CHECKOUT:
            assert (REPO / span).exists(), f"{page.name}: `{span}` does not exist"


# --- running the python blocks -------------------------------------------------------------------

def _placeholders() -> dict[str, Any]:
    """Names the pages leave to the reader (their own molecules), defined here so the examples run."""
    from molgraph.data.registry import dataset_path
    from molgraph.data.table import read_molecule_table

    esol = list(read_molecule_table(dataset_path("esol"), "smiles").smiles[:60])
    return {
        "smiles_list": esol[:8] + ["N(C)(C)(C)(C)C"],  # one molecule RDKit rejects, so the rejects loop runs
        "train_smiles": esol[:40],
        "test_smiles": esol[40:50],
        "smiles": esol[50:55] + ["C1CC"],  # unclosed ring: embed(errors="skip") reports it
    }


def _write_example_files(folder: Path) -> None:
    """``my.csv`` (smiles, pIC50; one label missing) from the first rows of bundled BACE."""
    from molgraph.data.registry import dataset_path

    with open(dataset_path("bace"), newline="", encoding="utf-8") as fh:
        rows = [(r["mol"], r["pIC50"]) for _, r in zip(range(30), csv.DictReader(fh))]
    rows[3] = (rows[3][0], "")
    with open(folder / "my.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("smiles", "pIC50"), *rows])


def _data_root_sets(stmt: ast.stmt) -> dict[str, str]:
    """Datasets a statement reads from the data root: name -> the function (load_dataset / dataset_path)."""
    from molgraph.data.registry import get_card

    found = {}
    for node in ast.walk(stmt):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        arg = node.args[0]
        if func in ("load_dataset", "dataset_path") and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            if not get_card(arg.value).bundled:  # an unknown name raises: the page names no such dataset
                found[arg.value] = func
    return found


def _names(stmt: ast.stmt, ctx: type) -> set[str]:
    return {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)}


def _run_block(block: Block, folder: Path, monkeypatch: pytest.MonkeyPatch, *, load_data_root: bool) -> list[str]:
    """Run a block's statements in ``folder``; returns the statements skipped, as source lines."""
    import molgraph.train
    from molgraph.data.registry import dataset_path

    TrainConfig = molgraph.train.TrainConfig  # wherever it lives, before the patch below replaces it

    def cheap_config(*args: Any, **kwargs: Any) -> TrainConfig:
        """The example's config, trained for one epoch at width 32 (hidden 300 costs ~15 s an epoch on a loaded machine)."""
        config = TrainConfig(*args, **kwargs)
        config.epochs = min(config.epochs, 1)
        config.hidden_dim = config.ffn_hidden_dim = 32
        return config

    monkeypatch.setattr(molgraph.train, "TrainConfig", cheap_config, raising=False)
    monkeypatch.chdir(folder)
    _write_example_files(folder)
    namespace: dict[str, Any] = {"__name__": "__readme__", **_placeholders()}
    tree = ast.parse(block.text, filename=block.id)
    ast.increment_lineno(tree, block.line)  # tracebacks name the page's own line
    skipped_names: set[str] = set()
    skipped: list[str] = []
    for stmt in tree.body:
        sets = _data_root_sets(stmt)
        needs_root = bool(sets) and (SHARED_DATA is None or (not load_data_root and "load_dataset" in sets.values()))
        if needs_root or _names(stmt, ast.Load) & skipped_names:
            if SHARED_DATA is not None:
                for name in sets:
                    assert Path(dataset_path(name)).is_file()  # located and sha256-checked, not featurized
            skipped_names |= _names(stmt, ast.Store)
            skipped.append(ast.unparse(stmt))
            continue
        exec(compile(ast.Module(body=[stmt], type_ignores=[]), str(block.page), "exec"), namespace)
    return skipped


@pytest.fixture
def example_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder, a private featurization cache, and the shared data as the data root (or an empty one)."""
    root = SHARED_DATA
    if root is None:
        root = tmp_path / "empty_data_root"
        root.mkdir()
    monkeypatch.setenv("MOLGRAPH_DATA", str(root))
    monkeypatch.setenv("MOLGRAPH_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("block", PY_BLOCKS, ids=lambda b: b.id)
def test_python_block_runs(block: Block, example_env: Path, monkeypatch: pytest.MonkeyPatch):
    _run_block(block, example_env, monkeypatch, load_data_root=False)


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for b in PY_BLOCKS if "load_dataset" in b.text], ids=lambda b: b.id)
def test_python_block_runs_with_the_data_root(block: Block, example_env: Path, monkeypatch: pytest.MonkeyPatch,
                                              request: pytest.FixtureRequest):
    # ~30 s for HIV alone: only when slow tests are asked for (`pytest -m slow`), not in a plain run of this file
    markexpr = request.config.getoption("markexpr") or ""
    if "slow" not in markexpr or "not slow" in markexpr:
        pytest.skip("featurizes data-root sets; run with -m slow")
    if SHARED_DATA is None:
        pytest.skip("shared data folder ../shared/data not found (set MOLGRAPH_TEST_DATA)")
    assert _run_block(block, example_env, monkeypatch, load_data_root=True) == []


def test_a_block_with_a_missing_name_fails(example_env: Path, monkeypatch: pytest.MonkeyPatch):
    block = Block(REPO / "README.md", 1, "python", "from molgraph.nn import GraphNorm\nGraphNorm(4)\nno_such_name(3)\n")
    with pytest.raises(NameError, match="no_such_name"):
        _run_block(block, example_env, monkeypatch, load_data_root=False)


# --- shell blocks --------------------------------------------------------------------------------

def _commands(block: Block) -> list[list[str]]:
    """Token lists of a shell block's commands: continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", block.text)
    lines = []
    for line in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            lines.append(line.split())
    return lines


def _flag(token: str) -> str | None:
    m = re.match(r"^(--?[A-Za-z][\w-]*)(=.*)?$", token.strip("[](),"))
    return m.group(1) if m else None


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return None


def _check_flags(where: str, parser: argparse.ArgumentParser, tokens: list[str]) -> None:
    for tok in tokens:
        if (flag := _flag(tok)) is not None:
            assert flag in parser._option_string_actions, f"{where}: {flag} is not an option of `{parser.prog}`"


def _check_molgraph_command(where: str, root: argparse.ArgumentParser, tokens: list[str]) -> None:
    """``tokens`` follow ``molgraph``: COMMAND [ACTION] with flags, where ``a | b`` lists alternatives."""
    levels: list[tuple[argparse.ArgumentParser, argparse.ArgumentParser]] = []  # (parent, chosen)
    current = root
    for k, tok in enumerate(tokens):
        if (flag := _flag(tok)) is not None:
            assert flag in current._option_string_actions, f"{where}: {flag} is not an option of `{current.prog}`"
            if flag == "--method" and current.prog.endswith(" train") and k + 1 < len(tokens):
                # `molgraph train --method NAME` offers that method's settings: check against them
                from molgraph.cli.main import build_parser

                method_root = build_parser("train", ["train", "--method", tokens[k + 1]])
                current = (_subcommands(method_root) or {})["train"]
            continue
        if tok == "|":
            continue
        if k and tokens[k - 1] == "|" and levels and re.match(r"^[a-z][\w-]*$", tok):  # an alternative action
            parent = levels[-1][0]
            subs = _subcommands(parent) or {}
            assert tok in subs, f"{where}: `{parent.prog} {tok}` is not a command"
            levels[-1] = (parent, subs[tok])
            current = subs[tok]
            continue
        subs = _subcommands(current)
        if subs is not None:  # current has actions and none is chosen yet (choosing one descends)
            assert tok in subs, f"{where}: `{current.prog} {tok}` is not a command (have {sorted(subs)})"
            levels.append((current, subs[tok]))
            current = subs[tok]
        # anything else is a value or a placeholder (`...`, NAME)


def _script_parser(script: Path) -> argparse.ArgumentParser:
    """The ArgumentParser a benchmark script's ``main`` builds (caught at its parse_args, nothing runs)."""

    class Caught(Exception):
        pass

    spec = importlib.util.spec_from_file_location(f"_readme_check_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def catch(self, *args, **kwargs):
        raise Caught(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(argparse.ArgumentParser, "parse_args", catch)
        mp.setattr(argparse.ArgumentParser, "parse_known_args", catch)
        with pytest.raises(Caught) as info:
            module.main([])
    return info.value.args[0]


def _make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    return {m.group(1) for m in re.finditer(r"^([A-Za-z][\w.-]*)\s*:(?!=)", text, re.MULTILINE)}


@pytest.mark.parametrize("block", SH_BLOCKS, ids=lambda b: b.id)
def test_shell_block_commands_exist(block: Block):
    from molgraph.cli.main import build_parser

    root = build_parser()
    for tokens in _commands(block):
        where = f"{block.id}: {' '.join(tokens)}"
        for k, tok in enumerate(tokens):
            if tok == "molgraph" or (tok == "molgraph.cli.main" and k and tokens[k - 1] == "-m"):
                _check_molgraph_command(where, root, tokens[k + 1:])
                break
            if re.fullmatch(r"benchmarks/\w+\.py", tok) and k and "python" in tokens[k - 1]:
                assert (REPO / tok).is_file(), where
                _check_flags(where, _script_parser(REPO / tok), tokens[k + 1:])
                break
        if tokens[0] == "make":
            for target in tokens[1:]:
                if "=" not in target and not target.startswith("-"):
                    assert target in _make_targets(), f"{where}: no make target {target!r}"


def test_shell_checks_catch_wrong_commands_and_flags():
    from molgraph.cli.main import build_parser

    root = build_parser()
    _check_molgraph_command("ok", root, "datasets list | info NAME | verify [NAME ...] [--root DIR]".split())
    _check_molgraph_command("ok", root, "train | predict | evaluate ... (see above)".split())
    _check_molgraph_command("ok", root, "ngram embed -i m.csv [--fit-on t.csv | --model n.npz]".split())
    with pytest.raises(AssertionError, match="not a command"):
        _check_molgraph_command("bad", root, "trian -i x.csv".split())
    _check_molgraph_command("ok", root, "train --method smoothed_gcn --p-minus 0.5 -o run".split())
    with pytest.raises(AssertionError, match="--p-minus is not an option"):
        _check_molgraph_command("bad", root, "train --p-minus 0.5 -o run".split())
    with pytest.raises(AssertionError, match="not a command"):
        _check_molgraph_command("bad", root, "datasets list | inspect NAME".split())
    with pytest.raises(AssertionError, match="--no-such-flag is not an option"):
        _check_molgraph_command("bad", root, "conformers generate -i m.csv [--no-such-flag]".split())
    parser = _script_parser(REPO / "benchmarks" / "graphnorm.py")
    _check_flags("ok", parser, ["--parts", "hiv", "--hiv-seeds", "3"])
    with pytest.raises(AssertionError, match="--hiv-sedes"):
        _check_flags("bad", parser, ["--hiv-sedes", "3"])
    assert {"demo", "test", "bench-graphnorm"} <= _make_targets()


# --- links and size ------------------------------------------------------------------------------

README_MAX_CHARS = 12_500  # the README is the front door; what is longer belongs on a docs/ page

_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.MULTILINE)
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def _links(page: Path) -> list[str]:
    """Link targets in a page's prose (code blocks and inline code spans are not links)."""
    prose = re.sub(r"`[^`\n]*`", "", _split_page(page)[1])
    return _INLINE_LINK.findall(prose) + _REF_LINK.findall(prose)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for line in _split_page(page)[1].splitlines():
        if m := _HEADING.match(line):
            slug = _slug(m.group(1))
            anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return anchors


def _is_relative(target: str) -> bool:
    return not re.match(r"^[a-zA-Z][\w+.-]*:", target) and not target.startswith("//")


def _check_link(page: Path, target: str) -> Path | None:
    """Assert a relative link resolves (file, and anchor if any); returns the file it points to."""
    path_part, _, anchor = target.partition("#")
    dest = (page.parent / path_part).resolve() if path_part else page
    where = f"{page.relative_to(REPO)}: link {target!r}"
    assert dest.exists(), f"{where}: {dest} does not exist"
    if anchor and dest.is_file() and dest.suffix == ".md":
        assert anchor in _anchors(dest), f"{where}: no heading #{anchor} in {dest.name} (have {sorted(_anchors(dest))})"
    return dest if dest.is_file() else None


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_point_to_existing_files(page: Path):
    for target in _links(page):
        if _is_relative(target):
            _check_link(page, target)


def test_link_checks_catch_broken_links(tmp_path: Path):
    page = REPO / "docs" / "_probe.md"  # never written: only its folder matters
    _check_link(page, "../README.md")
    with pytest.raises(AssertionError, match="does not exist"):
        _check_link(page, "no_such_page.md")
    assert _slug("Graph (non-molecule) sets: `datasets/graphs/`") == "graph-non-molecule-sets-datasetsgraphs"
    md = tmp_path / "a.md"
    md.write_text("# Title\n\n## 3D sets\n\n```sh\n# not a heading\n```\n\n## 3D sets\n", encoding="utf-8")
    assert _anchors(md) == {"title", "3d-sets", "3d-sets-1"}
    assert _links(md) == []
    md.write_text("See [x](b.md#top), ![img](p.png), `[no](code.md)` and\n\n[ref]: c.md\n", encoding="utf-8")
    assert _links(md) == ["b.md#top", "p.png", "c.md"]
    assert not _is_relative("https://example.org/a.md") and _is_relative("docs/a.md")


def test_every_docs_page_is_reachable_from_the_readme():
    docs = REPO / "docs"
    if not docs.is_dir():
        pytest.skip("no docs/ folder")
    reached, todo = set(), [REPO / "README.md"]
    while todo:
        page = todo.pop()
        if page in reached:
            continue
        reached.add(page)
        for target in _links(page):
            if _is_relative(target):
                dest = _check_link(page, target)
                if dest is not None and dest.suffix == ".md" and docs in dest.parents:
                    todo.append(dest)
    unreached = sorted(str(p.relative_to(REPO)) for p in docs.rglob("*.md") if p.resolve() not in reached)
    assert not unreached, f"docs pages no link from the README leads to: {unreached}"


def test_readme_stays_a_front_door():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text) < README_MAX_CHARS, (
        f"README.md has {len(text):,} characters (limit {README_MAX_CHARS:,}): move detail to a docs/ page")
    # one paragraph per method or area, each linking its page
    for page in ("property", "ngram", "graphnorm", "conformers", "featurize", "data", "trainer", "methods"):
        assert f"](docs/{page}.md)" in text, f"README.md does not link docs/{page}.md"
