"""The shape of the code (issue 23): short functions, no import cycles, no private names taken across
modules, the library free of the app and the command line.

Measured with Python's `ast` on the source, function-level imports included. Run it as a script for the
figures (``python tests/test_architecture.py``): the longest functions, the cycles, the private imports.
"""
from __future__ import annotations

import ast
import functools
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "mtlrec"
MAX_FUNCTION_LINES = 120
# private names one module may take from another, and why (at most 5)
KEPT_PRIVATE: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def library_files() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py")) if "__pycache__" not in p.parts}


@functools.lru_cache(maxsize=None)
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def functions(files: dict[str, Path]) -> list[tuple[int, str]]:
    """(lines, "module:qualified name") of every function and method, longest first."""
    out = []
    for mod, path in files.items():
        def visit(node, prefix=""):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    name = f"{prefix}{child.name}"
                    out.append((child.end_lineno - child.lineno + 1, f"{mod}:{name}"))
                    visit(child, name + ".")
                elif isinstance(child, ast.ClassDef):
                    visit(child, f"{prefix}{child.name}.")
                else:
                    visit(child, prefix)
        visit(_tree(path))
    return sorted(out, reverse=True)


def _absolute(mod: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = mod.split(".") if is_package else mod.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(files: dict[str, Path]) -> list[tuple[str, str, str | None, int]]:
    """(importer, imported module, name taken or None, line) for every import, at any depth."""
    out = []
    for mod, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Import):
                out += [(mod, a.name, None, node.lineno) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                src = _absolute(mod, is_package, node)
                for a in node.names:
                    sub = f"{src}.{a.name}"
                    if sub in files:                      # `from package import module`
                        out.append((mod, sub, None, node.lineno))
                    else:
                        out.append((mod, src, a.name, node.lineno))
    return out


def graph(files: dict[str, Path]) -> dict[str, set[str]]:
    g: dict[str, set[str]] = defaultdict(set)
    for a, b, _name, _line in imports(files):
        while b and b not in files and "." in b:        # `import mtlrec.x.y` names a module; a name: its module
            b = b.rsplit(".", 1)[0]
        if b in files and b != a:
            g[a].add(b)
    return g


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(g):
        if v not in index:
            strong(v)
    return out


def private_imports(files: dict[str, Path]) -> list[tuple[str, str, str, int]]:
    """(importer, module, _name, line): a private name of one mtlrec module taken by another."""
    return [(a, b, n, line) for a, b, n, line in imports(files)
            if n and n.startswith("_") and not n.startswith("__") and b.startswith("mtlrec") and b != a]


def _streamlit_importers() -> list[str]:
    out = []
    tops = [d for d in ROOT.iterdir() if d.is_dir() and not d.name.startswith(".")
            and d.name not in ("pages", "tests", "venv", "__pycache__")]
    paths = [p for d in tops for p in d.rglob("*.py")] + [p for p in ROOT.glob("*.py") if p.name != "app.py"]
    for path in sorted(paths):
        rel = path.relative_to(ROOT)
        if "__pycache__" in rel.parts or "site-packages" in rel.parts:
            continue
        for node in ast.walk(_tree(path)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n == "streamlit" or n.startswith("streamlit.") for n in names):
                out.append(f"{rel}:{node.lineno}")
    return out


# ---------------------------------------------------------------------------- the rules
def test_no_function_in_the_library_is_longer_than_120_lines():
    long = [(n, f) for n, f in functions(library_files()) if n > MAX_FUNCTION_LINES]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (split them into named steps): {long}"


def test_no_import_cycle_among_library_modules_counting_function_level_imports():
    found = cycles(graph(library_files()))
    assert not found, f"import cycles (function-level imports count): {found}"


def test_no_private_name_is_taken_across_library_modules():
    taken = [(a, b, n, line) for a, b, n, line in private_imports(library_files()) if (a, n) not in KEPT_PRIVATE]
    assert not taken, f"private names imported from another module (make them public or move them): {taken}"
    assert len(KEPT_PRIVATE) <= 5


def test_the_library_never_imports_the_app_or_the_command_line():
    files = library_files()
    bad = [(a, b, line) for a, b, _n, line in imports(files)
           if not (a.startswith("mtlrec.cli") or a == "mtlrec.__main__")
           and (b == "pages" or b.startswith("pages.") or b == "app" or b.startswith("mtlrec.cli"))]
    assert not bad, f"library modules importing pages/, app or mtlrec.cli: {bad}"


def test_only_the_app_imports_streamlit():
    assert not _streamlit_importers(), "streamlit imported outside pages/ and app.py"


def test_the_measures_see_what_they_claim():
    """The checks above are not vacuous: they see functions, imports and a cycle where there is one."""
    files = library_files()
    assert "mtlrec.config" in files and len(files) > 50
    assert functions(files)[0][0] > 40
    assert any(b == "mtlrec.config" for _a, b, _n, _l in imports(files))
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


if __name__ == "__main__":
    files = library_files()
    fns = functions(files)
    top = [m for m, p in files.items() if p.parent == PKG and p.name != "__init__.py"]
    print(f"modules: {len(files)}; files at mtlrec/ top level: {len(top) + 1} (with __init__.py); "
          f"packages: {sum(1 for p in files.values() if p.name == '__init__.py') - 1}")
    print(f"functions over 60 lines: {sum(1 for n, _ in fns if n > 60)}; over 120: "
          f"{sum(1 for n, _ in fns if n > 120)}")
    print("longest ten:", *[f"  {n:4d} {f}" for n, f in fns[:10]], sep="\n")
    big = sorted(((len(p.read_text().splitlines()), m) for m, p in files.items()), reverse=True)[:5]
    print("largest five files:", *[f"  {n:5d} {m}" for n, m in big], sep="\n")
    found = cycles(graph(files))
    print(f"cycles: {len(found)}", *[f"  {c}" for c in found], sep="\n")
    priv = private_imports(files)
    print(f"private cross-imports: {len(priv)}", *[f"  {a} <- {b}.{n} (line {line})" for a, b, n, line in priv],
          sep="\n")
    print("streamlit outside the app:", _streamlit_importers())
