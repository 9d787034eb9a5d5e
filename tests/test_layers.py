"""The package's layering, checked on the source (the analysis of ``graph.py``, as tests).

Layers, imports only downward (a module may import its own layer only within its own
sub-package)::

    errors, metrics, _version (0) -> format (1) -> model, files (2) -> codecs, data (3)
    -> api, train (4) -> eval (5) -> cli (6)

Every import counts, those inside function bodies included (they are what hid the old cycles).
The helpers here (:func:`import_edges`, :func:`layer_violations`, ...) take any folder of the
package, so a test of another layer is one parametrize entry away.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "walloc_cli"
PACKAGE = PACKAGE_DIR.name
MAX_LINES = 600

# Layer of each sub-package; the top-level modules named here are layer 0, the package root
# and ``__main__`` sit above everything (they may import anything, nothing imports them).
LAYERS: dict[str, int] = {"format": 1, "model": 2, "files": 2, "codecs": 3, "data": 3, "api": 4, "train": 4, "eval": 5, "cli": 6}
BASE_MODULES = frozenset({f"{PACKAGE}.errors", f"{PACKAGE}.metrics", f"{PACKAGE}._version"})
TOP = 9


@dataclass(frozen=True)
class ImportEdge:
    """One in-package import: ``source`` imports ``target`` (a module), naming ``name`` from it
    (``None`` for ``import x``) at ``line``; ``in_function`` when inside a function body."""

    source: str
    target: str
    name: str | None
    line: int
    in_function: bool


def package_modules(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (packages by ``__init__``)."""
    modules = {}
    for path in package_dir.rglob("*.py"):
        name = ".".join(path.relative_to(package_dir.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


def _resolve(target: str, modules: dict[str, Path]) -> str:
    """The module an imported dotted name lives in (``a.b.name`` -> ``a.b``)."""
    while target not in modules and "." in target:
        target = target.rsplit(".", 1)[0]
    return target


def import_edges(folder: Path = PACKAGE_DIR, package_dir: Path = PACKAGE_DIR) -> list[ImportEdge]:
    """Every import of a ``walloc_cli`` module made by the modules under ``folder`` (a
    sub-package's folder, or the whole package), relative imports resolved, function bodies
    and ``TYPE_CHECKING`` blocks included. Imports of a module by itself are left out."""
    modules = package_modules(package_dir)
    folder = folder.resolve()
    edges = []
    for source, path in sorted(modules.items()):
        if folder not in (path.parent, *path.parents):
            continue
        tree = ast.parse(path.read_text(), str(path))
        in_function = {
            id(sub)
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            for sub in ast.walk(node)
            if isinstance(sub, (ast.Import, ast.ImportFrom))
        }
        for node in ast.walk(tree):
            targets: list[tuple[str, str | None]] = []
            if isinstance(node, ast.Import):
                targets = [(alias.name, None) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = source.split(".") if path.name == "__init__.py" else source.split(".")[:-1]
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([base] if base else []))
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.append((full if full in modules else base, alias.name))
            for target, name in targets:
                if target != PACKAGE and not target.startswith(PACKAGE + "."):
                    continue
                target = _resolve(target, modules)
                if target != source:
                    edges.append(ImportEdge(source, target, name, node.lineno, id(node) in in_function))
    return edges


def layer(module: str) -> int:
    """The layer number of a module (see the module docstring)."""
    if module in BASE_MODULES:
        return 0
    parts = module.split(".")
    return LAYERS.get(parts[1], TOP) if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else TOP


def group(module: str) -> str:
    """The sub-package a module belongs to (``walloc_cli.format.header`` -> ``format``), or the
    module itself at the top level."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else module


def layer_violations(edges: list[ImportEdge]) -> list[str]:
    """Imports that go up, or sideways into another sub-package of the same layer."""
    bad = []
    for edge in edges:
        low, high = layer(edge.target), layer(edge.source)
        sideways = low == high and group(edge.target) != group(edge.source) and high not in (0, TOP)
        if low > high or sideways:
            bad.append(f"{edge.source}:{edge.line} imports {edge.target} (layer {low}, its own is {high})")
    return sorted(set(bad))


def private_imports(edges: list[ImportEdge]) -> list[str]:
    """Private names (``_x``, not dunders) imported from another module."""
    return sorted(
        f"{e.source}:{e.line} imports {e.target}.{e.name}"
        for e in edges
        if e.name and e.name.startswith("_") and not e.name.startswith("__") and e.name != "_version"
    )


def import_cycles(edges: list[ImportEdge]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def long_modules(folder: Path, limit: int = MAX_LINES) -> list[str]:
    """Modules under ``folder`` of more than ``limit`` lines."""
    return sorted(f"{p.relative_to(PACKAGE_DIR.parent)}: {n} lines" for p in folder.rglob("*.py") if (n := len(p.read_text().splitlines())) > limit)


def imports_torch(modules: list[str]) -> list[str]:
    """Of the heavy libraries a layer must not pull in, those present in ``sys.modules`` after a
    fresh interpreter imports ``modules``."""
    code = f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\nprint(' '.join(sorted({{'torch', 'safetensors.torch'}} & set(sys.modules))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=PACKAGE_DIR.parent)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


# --- the layers checked so far -------------------------------------------------------------

CHECKED = sorted(LAYERS)  # every sub-package: test_every_layer_is_checked keeps it so


@pytest.mark.parametrize("package", CHECKED)
def test_imports_go_only_down(package: str) -> None:
    edges = import_edges(PACKAGE_DIR / package)
    assert edges or package == "format"  # the walk found the imports (format imports errors only)
    assert layer_violations(edges) == []


@pytest.mark.parametrize("package", CHECKED)
def test_no_private_name_is_imported_across_modules(package: str) -> None:
    assert private_imports(import_edges(PACKAGE_DIR / package)) == []


@pytest.mark.parametrize("package", CHECKED)
def test_in_no_import_cycle(package: str) -> None:
    prefix = f"{PACKAGE}.{package}"
    cycles = [c for c in import_cycles(import_edges()) if any(m == prefix or m.startswith(prefix + ".") for m in c)]
    assert cycles == []


@pytest.mark.parametrize("package", CHECKED)
def test_no_module_is_over_600_lines(package: str) -> None:
    assert long_modules(PACKAGE_DIR / package) == []


def test_format_and_the_model_config_import_no_torch() -> None:
    modules = [m for m in package_modules() if m.startswith(f"{PACKAGE}.format")] + [f"{PACKAGE}.model.config", f"{PACKAGE}.model.zoo", f"{PACKAGE}.model.quality"]
    assert imports_torch(modules) == []


def test_the_analysis_sees_what_it_must() -> None:
    """The helpers on a known case: a function-body import is an edge, and an upward one is caught."""
    edges = import_edges()
    inner = [e for e in edges if e.in_function]
    assert inner, "imports inside function bodies must count"
    assert layer_violations([ImportEdge(f"{PACKAGE}.format.payload", f"{PACKAGE}.files.images", "x", 1, True)])
    assert layer_violations([ImportEdge(f"{PACKAGE}.model.zoo", f"{PACKAGE}.files.images", "x", 1, False)])  # sideways
    assert not layer_violations([ImportEdge(f"{PACKAGE}.model.zoo", f"{PACKAGE}.format.header", "x", 1, False)])
    assert import_cycles([ImportEdge("a", "b", None, 1, False), ImportEdge("b", "a", None, 1, True)]) == [["a", "b"]]


# --- the whole package ------------------------------------------------------------------------
# Each modality's own modules, layer by layer. A module of one modality never imports another
# modality's: shared ideas live in the modality-free modules (codecs.base, codecs.tiles,
# files.safe_io, files.sniff, format.*, model.*), so a change to one modality is made there once.
MODALITIES: dict[str, tuple[str, ...]] = {
    "image": ("codecs.image", "codecs.image_tiles", "files.images", "files.image_data", "files.image_meta", "files.png", "files.pillow_io", "files.tiff_image", "api.image_io", "data.photos"),
    "audio": ("codecs.audio", "codecs.audio_blocks", "files.audio", "api.audio_io", "data.audio", "data.render", "data.resample", "train.audio"),
    "volume": ("codecs.volume", "codecs.volume_tiles", "files.volumes", "api.volume_io", "data.volume", "train.volume"),
}


def modality_of(module: str) -> str | None:
    """The modality whose own module (or sub-package) ``module`` is, if any."""
    for name, members in MODALITIES.items():
        if any(module == f"{PACKAGE}.{m}" or module.startswith(f"{PACKAGE}.{m}.") for m in members):
            return name
    return None


def test_every_layer_is_checked() -> None:
    """A new sub-package must get a layer (and so fall under the tests above)."""
    folders = sorted(p.parent.name for p in PACKAGE_DIR.glob("*/__init__.py"))
    assert [f for f in folders if f not in LAYERS] == []


def test_modality_modules_never_import_each_other() -> None:
    crossing = sorted(
        f"{e.source}:{e.line} ({modality_of(e.source)}) imports {e.target} ({modality_of(e.target)})"
        for e in import_edges()
        if modality_of(e.source) and modality_of(e.target) and modality_of(e.source) != modality_of(e.target)
    )
    assert crossing == []


def test_the_modality_lists_name_real_modules() -> None:
    modules = package_modules()
    missing = [m for members in MODALITIES.values() for m in members if f"{PACKAGE}.{m}" not in modules]
    assert missing == []
