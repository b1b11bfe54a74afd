"""dvc.yaml's params are exactly the keys each stage reads, by construction (as its code deps
are its imports: tests/test_dependencies.py).

A key a stage reads but does not list lets DVC call its stale results up to date; a key it
lists but does not read reruns it, perhaps hours of training, for nothing (a figure's grid once
retrained every autoencoder). Both directions fail here, leaf for leaf: a block listed whole
(``vae``) counts as each of its leaves.

What a stage reads is derived from its code twice, and the expected keys are the union:

- **Recorded**, in the shared tiny pipeline's one ``dvc repro`` (harness/e2e.py, ``build_pipeline``):
  with ``$STAGES_PARAMS_READ`` set, ``stages/lib/params.py``'s frozen dataclasses note every
  leaf read, wherever it happens (the script, a library function handed a block, a property
  such as ``fresh.seed_list``, ``dataclasses.asdict``), and each stage writes its keys to a
  file. This sees through any aliasing or indirection, but only on the paths the tiny run
  takes: device cpu, precision fp32, small sizes.
- **Static**, from the stage script's syntax tree: every attribute chain rooted at
  ``params.load()`` or at a name bound to it or to one of its blocks (``v = p.vae``), on every
  branch; a property counts as the fields its body reads. This sees what the tiny run does not
  take: a read under ``if device.type == "cuda"`` or ``if p.precision == "bf16"`` in a script.

The static reading is complete only if the params never leave the script, so that is checked
too: a script hands the library values (``p.vae.epochs``, a ``Recipe``), not blocks, and no
library module but params.py loads params itself. Branches in the library then hold no read to
miss: the cuda and bf16 paths live in the library (runtime.setup, train.fit), on values read in
the script. A script that hands on a block (``escaped``) fails here: only the recording would
see what is read of it. The one exception is ``report``, named in ``HANDS_ON_PARAMS`` with why.

One more rule is DVC's: a key named ``size`` is listed by its full key, never inside a block
(``RUN_CACHE_BLIND``).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import re
import textwrap
import typing
from pathlib import Path

import pytest

from harness.e2e import params_read
from stages.lib import params
from tests.test_dependencies import ROOT, stage_script, stages

# Stages that hand the whole params to the library, and why the recorded reading is enough there.
HANDS_ON_PARAMS = {
    "report": "its prose prints the params it describes (report.Metrics); it has no device or precision branch",
}
# Library modules that load params: the loader alone (`make check` loads them in tools/check.py).
LOADS_PARAMS = {"stages/lib/params.py"}


def hints(cls: type) -> dict[str, typing.Any]:
    return typing.get_type_hints(cls)


def leaves(cls: type = params.Params, prefix: str = "") -> set[str]:
    """Every leaf key of params.yaml (``ae.epochs``), from the dataclasses the loader builds."""
    found = set()
    for name, tp in ((f.name, hints(cls)[f.name]) for f in dataclasses.fields(cls)):
        found |= leaves(tp, f"{prefix}{name}.") if dataclasses.is_dataclass(tp) else {prefix + name}
    return found


LEAVES = leaves()


def expand(key: str) -> set[str]:
    """A key as dvc.yaml lists it, as the leaves it stands for."""
    found = {leaf for leaf in LEAVES if leaf == key or leaf.startswith(key + ".")}
    assert found, f"{key!r} names no key of params.yaml"
    return found


def declared(stage: dict) -> set[str]:
    return set().union(*(expand(key) for key in stage.get("params", [])))


def property_reads(cls: type, name: str) -> set[str]:
    """The fields a property of a params class reads (``seed_list``: first_seed, seed_count)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(getattr(cls, name).fget)))
    fields = {f.name for f in dataclasses.fields(cls)}
    return {
        n.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self"
    } & fields


@dataclasses.dataclass
class Reading:
    keys: set[str]  # leaf keys read, on any path
    escaped: set[str]  # blocks handed on whole ("" is the whole params, "ae." a block)


def _is_load(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "load"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "params"
    )


def _bindings(node: ast.AST) -> list[tuple[ast.expr, ast.expr]]:
    """(target, value) pairs of an assignment, tuples unpacked pairwise."""
    if not isinstance(node, ast.Assign):
        return []
    pairs = []
    for target in node.targets:
        if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
            pairs += zip(target.elts, node.value.elts, strict=False)
        else:
            pairs.append((target, node.value))
    return [(t, v) for t, v in pairs if isinstance(t, ast.Name)]


def static_reads(source: str) -> Reading:
    """The params keys a script reads, from its syntax tree (see the module docstring)."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    aliases: dict[str, tuple[str, type]] = {}

    def shadowed(name: ast.Name) -> bool:
        """Whether a comprehension, lambda or function around the name binds it anew."""
        node: ast.AST | None = name
        while node := parents.get(node):
            if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                bound = [n for g in node.generators for n in ast.walk(g.target)]
            elif isinstance(node, (ast.Lambda, ast.FunctionDef)):
                bound = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
                bound += [a for a in (node.args.vararg, node.args.kwarg) if a]
            else:
                continue
            if name.id in {getattr(n, "id", getattr(n, "arg", None)) for n in bound}:
                return True
        return False

    def block(node: ast.AST) -> tuple[str, type] | None:
        """The params block an expression evaluates to (key prefix and class), if any."""
        if _is_load(node):
            return "", params.Params
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and not shadowed(node):
            return aliases.get(node.id)
        if isinstance(node, ast.Attribute) and (outer := block(node.value)):
            tp = hints(outer[1]).get(node.attr)
            if tp is not None and dataclasses.is_dataclass(tp):
                return f"{outer[0]}{node.attr}.", tp
        return None

    bindings = [pair for node in ast.walk(tree) for pair in _bindings(node)]
    while True:  # names bound to blocks, through names bound before them
        found = {t.id: b for t, v in bindings if (b := block(v))}
        if found == aliases:
            break
        aliases = found
    bound_values = {id(v) for _, v in bindings}

    reading = Reading(set(), set())
    for node in ast.walk(tree):
        if not (outer := block(node)):
            continue
        prefix, cls = outer
        parent = parents.get(node)
        if isinstance(parent, ast.Attribute) and parent.value is node:
            if block(parent):
                continue  # a block inside this one: read where it is used
            if parent.attr in {f.name for f in dataclasses.fields(cls)}:
                reading.keys.add(prefix + parent.attr)
            elif isinstance(getattr(cls, parent.attr, None), property):
                reading.keys |= {prefix + name for name in property_reads(cls, parent.attr)}
            else:
                reading.escaped.add(prefix)
        elif id(node) not in bound_values:
            reading.escaped.add(prefix)
    return reading


def script_reading(stage: dict) -> Reading:
    return static_reads((ROOT / stage_script(stage)).read_text())


def generic(name: str) -> str:
    return name.split("@")[0]  # a matrix stage's instance (train_ae@1) is its stage's entry


def recorded(folder: Path) -> dict[str, set[str]]:
    """Stage -> the keys its instances read in the tiny run (files written by params.py)."""
    found: dict[str, set[str]] = {}
    for path in folder.glob("*.json"):
        found.setdefault(generic(path.stem), set()).update(json.loads(path.read_text()))
    return found


def differences(name: str, stage: dict, read: set[str]) -> str:
    listed = declared(stage)
    missing, extra = sorted(read - listed), sorted(listed - read)
    if not missing and not extra:
        return ""
    return (
        f"stage {name}: dvc.yaml's params lack {missing} and list {extra} that its code does not read; "
        f"it reads {sorted(read)}"
    )


def test_every_key_dvc_yaml_lists_exists():
    for stage in stages().values():
        declared(stage)


# DVC's run-cache key drops every key with these names from the stage's lockfile entry, params
# included (treeverse/dvc#10296): listed inside a block (`latent_grid`), a change to
# a grid's `size` key (now `cells`) restored the outputs of the old size. Listed whole, the key keeps its dots.
RUN_CACHE_BLIND = {"size", "nfiles"}


def test_no_key_named_size_hides_inside_a_listed_block():
    for name, stage in stages().items():
        for key in stage.get("params", []):
            hidden = sorted(leaf for leaf in expand(key) if leaf != key and leaf.split(".")[-1] in RUN_CACHE_BLIND)
            assert not hidden, (
                f"stage {name} lists {key!r}: list {hidden} by their own keys, which DVC's run cache sees"
            )


def test_each_script_hands_the_library_values_not_params():
    """What makes the static reading complete (module docstring)."""
    for name, stage in stages().items():
        if name in HANDS_ON_PARAMS:
            continue
        escaped = script_reading(stage).escaped
        assert not escaped, (
            f"stage {name} hands on params blocks {sorted(p.rstrip('.') or 'params' for p in escaped)} whole: "
            "pass the values it needs, so that every read is seen on every path"
        )
    lib = {str(p.relative_to(ROOT)) for p in (ROOT / "stages" / "lib").glob("*.py")}
    loaders = {
        path
        for path in lib
        if re.search(r"\bparams\.load\(|\bfrom stages\.lib\.params import", (ROOT / path).read_text())
    }
    assert loaders <= LOADS_PARAMS


def test_each_stage_lists_every_key_its_script_reads_on_any_path():
    """The static half alone, without the tiny pipeline: a quick check of every script."""
    for name, stage in stages().items():
        missing = sorted(script_reading(stage).keys - declared(stage))
        assert not missing, f"stage {name} reads {missing}, which its dvc.yaml entry does not list"


def test_each_stage_lists_exactly_the_keys_its_code_reads(pipeline):
    """Both readings against dvc.yaml, after the tiny pipeline's run (module docstring)."""
    repo, _, _ = pipeline
    read_in_run = recorded(params_read(repo))
    entries = stages()
    assert set(read_in_run) == set(entries), "every stage ran once, recording what it read"
    failures = []
    for name, stage in entries.items():
        static = script_reading(stage)
        if not static.escaped:  # the reader sees every read of such a script
            unseen = sorted(read_in_run[name] - static.keys)
            assert not unseen, f"stage {name} read {unseen} in the run, which the static reader missed"
        problem = differences(name, stage, static.keys | read_in_run[name])
        if problem:
            failures.append(problem)
    assert not failures, "\n".join(failures)
    assert {name for name, stage in entries.items() if script_reading(stage).escaped} == set(HANDS_ON_PARAMS)


SCRIPT = """
from stages.lib import params

def main():
    p = params.load()
    v, c = p.vae, p.classifier
    g = p.prior_grid
    seed = params.load().pca.seed
    if p.precision == "bf16":
        lr = v.lr
    for s in p.fresh.seed_list:
        pass
    terms = {k: v for k, v in {}.items()}  # another v, in the comprehension's scope
    def f(c):
        return c.lr  # another c
    return c.epochs, g.cells, (lambda g: g.range)
"""


def test_the_static_reader_follows_names_tuples_branches_and_properties():
    assert static_reads(SCRIPT) == Reading(
        {
            "vae.lr",
            "classifier.epochs",
            "prior_grid.cells",
            "pca.seed",
            "precision",
            "fresh.first_seed",
            "fresh.seed_count",
        },
        set(),
    )


@pytest.mark.parametrize(
    ("line", "escaped"),
    [
        ("f(p.vae)", {"vae."}),
        ("f(p)", {""}),
        ("x = [p.ae, 1]", {"ae."}),
        ("p.ae.replace()", {"ae."}),
        ("report.Metrics.load(params.load())", {""}),
    ],
)
def test_the_static_reader_notes_a_block_handed_on_whole(line, escaped):
    reading = static_reads(f"p = params.load()\n{line}\n")
    assert reading.escaped == escaped


def test_recording_notes_each_leaf_read_and_no_validation(tmp_path):
    """The recording mode of params.py, in a process of its own (it writes at exit)."""
    import os
    import subprocess
    import sys

    (tmp_path / "params.yaml").write_text((ROOT / "tests" / "tiny_params.yaml").read_text())
    code = (
        "from stages.lib import params\n"
        "p = params.load()\n"
        "p.vae.epochs; p.fresh.seed_list; p.prior_grid; p.sample\n"
        "import dataclasses; dataclasses.asdict(p.latent_grid)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), params.RECORD_ENV: str(tmp_path / "read"), "DVC_STAGE": "train_ae@7"}
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True)
    assert json.loads((tmp_path / "read" / "train_ae@7.json").read_text()) == [
        "fresh.first_seed",
        "fresh.seed_count",
        "latent_grid.cells",
        "latent_grid.range",
        "vae.epochs",
    ]  # no precision or device (checked while loading), no sample.count (checked likewise)
