"The package's rooms: subpackages in layers, no import cycle, no upward import, no cnn_course import inside a function."
import ast, importlib
from pathlib import Path
import pytest

PKG = Path(__file__).parents[1]/'cnn_course'
# The rooms, lowest first: a module may import its own room and the rooms below it, never one above.
LAYERS = ['core', 'data', 'models', 'inference', 'evaluation', 'training', 'course', 'grading', 'cli']
TOP_FILES = {'__init__.py', '_modidx.py', 'all.py', 'cli.py'}  # everything else lives in a subpackage
MODULES = sorted('.'.join(p.relative_to(PKG).with_suffix('').parts) for p in PKG.rglob('*.py')
                 if p.name not in ('__init__.py', '_modidx.py', 'all.py') and '__pycache__' not in p.parts)

def room(mod:str) -> str: return mod.split('.')[0]

def _resolve(base:str, level:int, mod:str) -> str:
    "The absolute name (below cnn_course) of a relative import `from {'.'*level}{base}` in module `mod`."
    parent = mod.split('.')[:-1]
    if level > 1: parent = parent[:len(parent) - (level - 1)]
    return '.'.join(parent + ([base] if base else []))

def _target(node:ast.AST, mod:str) -> list:
    "The cnn_course modules an import statement in module `mod` names (dotted, without `cnn_course.`)."
    if isinstance(node, ast.Import):
        return [a.name.split('.', 1)[1] for a in node.names if a.name.startswith('cnn_course.')]
    if isinstance(node, ast.ImportFrom):
        if node.level: base = _resolve(node.module or '', node.level, mod)
        elif (node.module or '') == 'cnn_course': base = ''
        elif (node.module or '').startswith('cnn_course.'): base = node.module.split('.', 1)[1]
        else: return []
        names = [f'{base}.{a.name}' if base else a.name for a in node.names]
        if subs := [n for n in names if n in MODULES]: return subs  # `from cnn_course.data import loaders`
        return [base] if base in MODULES else []
    return []

def _imports(mod:str) -> tuple:
    "(module-level cnn_course imports, imports inside functions as (function line, target))."
    tree = ast.parse((PKG/(mod.replace('.', '/') + '.py')).read_text())
    top, inner = set(), []
    def walk(node, in_func):
        for child in ast.iter_child_nodes(node):
            f = in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            for t in _target(child, mod):
                (inner.append((child.lineno, t)) if in_func else top.add(t))
            walk(child, f)
    walk(tree, False)
    return top - {mod}, inner

GRAPH = {m: _imports(m) for m in MODULES}

def _cycle(graph:dict) -> list|None:
    "One import cycle of `graph` as a list of modules, or None."
    state, stack = {}, []
    def visit(m):
        state[m] = 'open'; stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 'open': return stack[stack.index(n):] + [n]
            if n not in state and (c := visit(n)): return c
        state[m] = 'done'; stack.pop()
    for m in sorted(graph):
        if m not in state and (c := visit(m)): return c

def _reach(mod:str) -> set:
    "Every module `mod` imports, directly or through others."
    seen, todo = set(), [mod]
    while todo:
        for n in GRAPH[todo.pop()][0] - seen: seen.add(n); todo.append(n)
    return seen

def test_cycle_finder_finds_cycles():
    assert _cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert _cycle({'a': {'b'}, 'b': set(), 'c': {'a', 'b'}}) is None

def test_target_reads_relative_and_absolute_imports():
    tree = ast.parse('\n'.join(['from ..core.basics import x', 'from cnn_course.inference.runs import y', 'import cnn_course.data.loaders',
                                 'from . import images', 'from cnn_course.data import fetch', 'from .layout import z', 'import os']))
    assert [t for n in tree.body for t in _target(n, 'core.downloads')] == [
        'core.basics', 'inference.runs', 'data.loaders', 'core.images', 'data.fetch', 'core.layout']

def test_the_package_holds_only_subpackages():
    "Apart from the entry points, every module sits in a room, and every room is a layer."
    assert {p.name for p in PKG.glob('*.py')} == TOP_FILES
    rooms = {p.name for p in PKG.iterdir() if p.is_dir() and (p/'__init__.py').exists()}
    assert rooms == set(LAYERS) - {'cli'}
    assert all((PKG/r/'__init__.py').read_text().strip() for r in rooms), 'each room says in its __init__ what it holds'

def test_no_import_cycles():
    c = _cycle({m: top for m, (top, _) in GRAPH.items()})
    assert c is None, f"import cycle: {' -> '.join(c)}"

def test_no_upward_import():
    "A room imports only itself and the rooms below it: core < data < models < ... < grading < cli."
    up = [(m, t) for m, (top, _) in GRAPH.items() for t in top if LAYERS.index(room(t)) > LAYERS.index(room(m))]
    assert not up, f'upward imports (module, imported): {up}'

def test_grading_a_project_never_imports_training():
    "The project grader reads saved runs and notebooks: nothing of it, directly or not, can train."
    for m in ['grading.project', 'grading.project_class', 'grading.lms', 'grading.sandbox']:
        assert not {t for t in _reach(m) if room(t) == 'training'}, m

def test_registry_imports_nothing_that_builds():
    assert GRAPH['models.backbones'][0] <= {'core.basics'}

def test_folder_layout_and_generated_data_sit_below_the_dataset_registry():
    assert GRAPH['core.layout'][0] <= {'core.basics'} and GRAPH['data.shapes'][0] <= {'core.basics', 'core.layout'}
    assert {'core.layout', 'data.shapes'} <= GRAPH['data.fetch'][0]

def test_no_module_over_300_lines():
    long = {m: n for m in MODULES if (n := len((PKG/(m.replace('.', '/') + '.py')).read_text().splitlines())) > 300}
    assert not long, f'modules over 300 lines (split them by concern): {long}'

def test_all_gathers_each_name_once():
    "`from cnn_course.all import *` gives each name one meaning: no two modules it gathers export a name for different things."
    src = ast.parse((PKG/'all.py').read_text())
    seen = {}
    for node in src.body:
        if not isinstance(node, ast.ImportFrom): continue
        mod = importlib.import_module(f'cnn_course.{node.module}')
        for name in mod.__all__:
            if name == 'add_commands': continue
            o = getattr(mod, name)
            assert seen.setdefault(name, (node.module, o))[1] is o, f'{name}: from {seen[name][0]} and {node.module}'
    allm = importlib.import_module('cnn_course.all')
    assert 'add_commands' not in vars(allm) and {'vision_learner'}.isdisjoint(vars(allm))  # fastai's names stay fastai's
    assert {'CachedBody', 'get_block', 'load_run', 'check', 'answered', 'install_timm_weights'} <= set(vars(allm))

# Imports inside a function kept on purpose (no cycle behind them), with why: {module: {imported module: reason}}.
ALLOWED = {'grading.sandbox': {'inference.runs': "each job's child imports sandbox: at its top, runs would bring torch into every child"}}

def test_allowed_inner_imports_break_no_cycle():
    assert set(ALLOWED) <= set(MODULES) and all(set(v) <= set(MODULES) for v in ALLOWED.values())
    graph = {m: top | set(ALLOWED.get(m, {})) for m, (top, _) in GRAPH.items()}
    assert _cycle(graph) is None

@pytest.mark.parametrize('mod', MODULES)
def test_no_cnn_course_import_inside_a_function(mod):
    inner = [(line, t) for line, t in GRAPH[mod][1] if t not in ALLOWED.get(mod, {})]
    assert not inner, f'{mod}.py imports cnn_course modules in functions (line, module): {inner}'
