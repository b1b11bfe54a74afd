"""dvc.yaml's code dependencies are exactly what each stage imports, by construction.

A stage's code deps must be its script plus the transitive closure of the ``stages.lib``
modules it imports (at module level or inside a function), read from the source with
``ast``, and each module's own files: those beside it that share its name (the explorer's
``explorer.html`` and ``explorer.js`` belong to ``explorer.py``). A dependency that is
missing lets DVC call stale results up to date; one too many reruns a stage for nothing.
Both directions fail here.
"""

import ast
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LIB = "stages.lib"
# Left out of every stage on purpose: no code that can change an output (a package docstring;
# Ctrl-C restored for the seconds a stage spends importing).
NOT_DEPENDENCIES = {"stages/__init__.py", "stages/lib/__init__.py"}


def module_path(module: str) -> str:
    return module.replace(".", "/") + ".py"


def imported_lib_modules(path: Path) -> set[str]:
    """The ``stages.lib`` modules one source file imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith(LIB + ".")}
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == LIB:  # from stages.lib import a, b
                found |= {f"{LIB}.{a.name}" for a in node.names}
            elif node.module.startswith(LIB + "."):
                found.add(node.module)
    return found


def own_files(path: str, root: Path = ROOT) -> set[str]:
    """The files beside a module that share its name: what it reads of its own."""
    module = root / path
    return {str(f.relative_to(root)) for f in module.parent.glob(module.stem + ".*") if f.suffix != ".py"}


def closure(script: str, root: Path = ROOT) -> set[str]:
    """The script and every ``stages/lib`` file it reaches through imports, with their own files."""
    seen, todo = {script}, [script]
    while todo:
        for module in imported_lib_modules(root / todo.pop()):
            path = module_path(module)
            assert (root / path).is_file(), f"{module} imported but {path} does not exist"
            if path not in seen:
                seen.add(path)
                todo.append(path)
    return seen | {f for path in seen for f in own_files(path, root)}


def stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def stage_script(stage: dict) -> str:
    match = re.match(r"python -m (stages\.\w+)", stage["cmd"])
    assert match, f"unexpected cmd {stage['cmd']!r}"
    return module_path(match.group(1))


def invalidated_by() -> dict[str, list[str]]:
    """Library module -> the stages whose closure holds it."""
    table: dict[str, list[str]] = {}
    for name, stage in stages().items():
        for path in sorted(closure(stage_script(stage))):
            if path.startswith("stages/lib/"):
                table.setdefault(path, []).append(name)
    return dict(sorted(table.items()))


def test_code_deps_are_the_import_closure():
    for name, stage in stages().items():
        declared = {d for d in stage["deps"] if d.startswith("stages/")}
        expected = closure(stage_script(stage)) - NOT_DEPENDENCIES
        missing, extra = sorted(expected - declared), sorted(declared - expected)
        assert not missing and not extra, (
            f"stage {name}: dvc.yaml lacks {missing} and lists {extra} that it does not import; "
            f"its code deps are {sorted(expected)}"
        )


def test_every_library_module_is_a_dependency_of_some_stage():
    lib = {str(p.relative_to(ROOT)) for p in (ROOT / "stages" / "lib").glob("*.py")} - NOT_DEPENDENCIES
    assert lib == {path for path in invalidated_by() if path.endswith(".py")}


def test_every_library_file_belongs_to_a_module():
    """A page or template in stages/lib is named after the module that reads it, so that the
    closure finds it; a file of no module would be read by none, or go unseen by DVC."""
    files = {str(p.relative_to(ROOT)) for p in (ROOT / "stages" / "lib").iterdir() if p.is_file()}
    owned = {f for path in files if path.endswith(".py") for f in own_files(path)}
    assert {f for f in files if not f.endswith(".py")} == owned


def test_the_project_tree_of_docs_pipeline_names_every_library_module():
    """docs/pipeline.md's tree is where a reader looks for a module; one it leaves out is unfindable."""
    text = (ROOT / "docs" / "pipeline.md").read_text()
    tree = text[text.index("  lib/ ") : text.index("\ndata/idx/")]
    modules = {p.stem for p in (ROOT / "stages" / "lib").glob("*.py")} - {"__init__"}
    assert {m for m in modules if not re.search(rf"\b{m}\b", tree)} == set()


def test_the_header_of_dvc_yaml_says_which_stages_each_module_reruns():
    """The table at the top of dvc.yaml is what the imports give, so it cannot go stale."""
    text = (ROOT / "dvc.yaml").read_text()
    header = dict(re.findall(r"^#   (stages/lib/\w+\.\w+): (.+)$", text, re.MULTILINE))
    assert header == {path: ", ".join(names) for path, names in invalidated_by().items()}


def test_the_closure_follows_imports_inside_functions_and_through_modules(tmp_path):
    """The import reader itself, on a made-up package: every import form, nothing unreached."""
    lib = tmp_path / "stages" / "lib"
    lib.mkdir(parents=True)
    (tmp_path / "stages" / "s.py").write_text("from stages.lib import a\n")
    (lib / "a.py").write_text("def f():\n    from stages.lib.b import g\n")
    (lib / "b.py").write_text("import stages.lib.c\n")
    (lib / "c.py").write_text("import os\n")
    (lib / "d.py").write_text("")
    (lib / "c.js").write_text("")
    (lib / "d.html").write_text("")
    assert closure("stages/s.py", tmp_path) == {
        "stages/s.py",
        *(f"stages/lib/{name}" for name in ("a.py", "b.py", "c.py", "c.js")),
    }


if __name__ == "__main__":  # prints the table for dvc.yaml's header: python -m tests.test_dependencies
    for path, names in invalidated_by().items():
        print(f"#   {path}: {', '.join(names)}")
