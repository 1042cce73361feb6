"""Types for user components that TorchScript cannot infer: pysf supplies the component contracts.

TorchScript takes every unannotated argument for a Tensor, so an encoder written the way Sample
Factory's documentation writes it, ``def forward(self, obs_dict): return self.net(obs_dict["obs"])``,
does not compile. pysf knows what each component receives: the annotated methods of its base classes are
the contracts (``Encoder.forward``, ``ModelCore.forward``, ``Decoder.forward`` and the ``ActorCritic``
methods ``forward_head`` / ``forward_core`` / ``forward_tail`` / ``forward``). Before compiling,
``supply_contract_annotations`` gives every module of the *inference copy* of a model a generated subclass
of its class whose methods are the user's own code with the missing annotations written in. The user's
classes are never modified: the learner, eager inference and user code run them as written.

What gets annotated, only where the user wrote no annotation:

* the parameters of a contract method, by position, with the contract's types. An ``Encoder`` gets its
  dict contract only where it receives the observation dict: as a direct child of the actor-critic, or
  when its ``forward`` indexes that parameter with a string (an encoder nested in another one usually
  receives one tensor);
* in any other method of a user component: a parameter used as ``param["key"]`` / ``param.items()`` becomes
  ``Dict[str, Tensor]``; one with a ``bool``/``int``/``float``/``str`` default gets that type, one that
  defaults to ``None`` becomes ``Optional[Tensor]``.

The annotated source is registered with ``linecache`` under ``"<file> [annotated by pysf]"`` with the
original line numbers, so TorchScript's error messages point at the user's lines.
"""

from __future__ import annotations

import __future__
import ast
import inspect
import linecache
import textwrap
import types
import typing
import weakref
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from pysf.model.actor_critic import ActorCritic
from pysf.model.core import ModelCore
from pysf.model.decoder import Decoder
from pysf.model.encoder import Encoder

# The bases whose annotated methods are contracts, and those methods.
_CONTRACT_METHODS: Dict[type, Tuple[str, ...]] = {
    ActorCritic: ("forward_head", "forward_core", "forward_tail", "forward"),
    Encoder: ("forward",),
    ModelCore: ("forward",),
    Decoder: ("forward",),
}
_DICT_OF_TENSORS = "Dict[str, torch.Tensor]"
_SCALAR_DEFAULT_TYPES = (bool, int, float, str)
_DICT_METHODS = {"items", "keys", "values", "get"}
ANNOTATED_FILE_SUFFIX = " [annotated by pysf]"

# (user class, annotations per method) -> generated subclass, so that repeated compiles reuse TorchScript's
# cached types for it; weak so that classes defined in tests can go away.
_GENERATED: "weakref.WeakKeyDictionary[type, Dict[Any, type]]" = weakref.WeakKeyDictionary()


def torchscript_type_source(annotation: Any) -> str:
    """TorchScript source text for a typing annotation (``Dict[str, Tensor]`` -> ``"Dict[str, torch.Tensor]"``).

    The result names only what TorchScript's type parser recognizes without looking names up (``Dict``,
    ``Tuple``, ``List``, ``Optional``, ``torch.Tensor``, builtin scalars), so it compiles in any module.
    """
    if annotation is Tensor:
        return "torch.Tensor"
    if annotation in _SCALAR_DEFAULT_TYPES:
        return annotation.__name__
    if annotation is type(None):
        return "None"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union and len(args) == 2 and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return f"Optional[{torchscript_type_source(inner)}]"
    names = {dict: "Dict", tuple: "Tuple", list: "List"}
    if origin in names and args:
        return f"{names[origin]}[{', '.join(torchscript_type_source(a) for a in args)}]"
    raise TypeError(f"no TorchScript spelling for annotation {annotation!r}")


def _contract(base: type, method_name: str) -> List[Optional[str]]:
    """The contract's parameter types (after ``self``), as TorchScript source."""
    method = base.__dict__[method_name]
    hints = typing.get_type_hints(method)
    params = list(inspect.signature(method).parameters.values())[1:]
    return [torchscript_type_source(hints[p.name]) if p.name in hints else None for p in params]


def _is_plain_function(fn: Any) -> bool:
    return isinstance(fn, types.FunctionType) and fn.__code__.co_filename not in ("<string>", "<stdin>")


def _defined_by_pysf_base(fn: Any) -> bool:
    return any(fn is base.__dict__.get(fn.__name__) for base in _CONTRACT_METHODS)


def _function_def(fn: types.FunctionType) -> Optional[Tuple[ast.FunctionDef, str, int, str]]:
    """``(def node, dedented source, first line number, file name)`` of ``fn``, or None without source."""
    try:
        lines, first_line = inspect.getsourcelines(fn)
        filename = inspect.getsourcefile(fn) or fn.__code__.co_filename
    except (OSError, TypeError):
        return None
    source = textwrap.dedent("".join(lines))
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef):
        return None
    return node, source, first_line, filename


def _positional_args(node: ast.FunctionDef) -> List[ast.arg]:
    return list(node.args.posonlyargs) + list(node.args.args)


def _default_of(node: ast.FunctionDef, index: int) -> Optional[ast.expr]:
    args = _positional_args(node)
    defaults = node.args.defaults
    first_with_default = len(args) - len(defaults)
    return defaults[index - first_with_default] if index >= first_with_default else None


def _used_as_dict(node: ast.FunctionDef, name: str) -> bool:
    """Whether the body indexes ``name`` with a string or calls one of its dict methods."""
    for child in ast.walk(node):
        if isinstance(child, ast.Subscript) and isinstance(child.value, ast.Name) and child.value.id == name:
            if isinstance(child.slice, ast.Constant) and isinstance(child.slice.value, str):
                return True
        if isinstance(child, ast.Attribute) and isinstance(child.value, ast.Name) and child.value.id == name:
            if child.attr in _DICT_METHODS:
                return True
    return False


def _inferred_type(node: ast.FunctionDef, index: int, arg: ast.arg) -> Optional[str]:
    """A type for an unannotated parameter outside the contracts, from how it is used or defaulted."""
    if _used_as_dict(node, arg.arg):
        return _DICT_OF_TENSORS
    default = _default_of(node, index)
    if isinstance(default, ast.Constant):
        if default.value is None:
            return "Optional[torch.Tensor]"
        if type(default.value) in _SCALAR_DEFAULT_TYPES:
            return type(default.value).__name__
    return None


def _missing_annotations(
    node: ast.FunctionDef, contract: Optional[Sequence[Optional[str]]]
) -> Dict[int, str]:
    """Parameter index (``self`` is 0) -> type to write in, for unannotated parameters."""
    missing: Dict[int, str] = {}
    for index, arg in enumerate(_positional_args(node)):
        if index == 0 or arg.annotation is not None:
            continue
        wanted = contract[index - 1] if contract is not None and index - 1 < len(contract) else None
        if wanted is None:
            wanted = _inferred_type(node, index, arg)
        if wanted is not None:
            missing[index] = wanted
    return missing


def annotated_copy(fn: types.FunctionType, annotations: Dict[int, str]) -> types.FunctionType:
    """A copy of ``fn`` whose source has ``annotations`` (parameter index -> type source) written in.

    Same globals, closure cells, defaults and line numbers. TorchScript reads the copy's source through
    ``linecache``: the entry ``<file> + ANNOTATED_FILE_SUFFIX`` holds the original file with every annotated
    function of that file written over its original lines.
    """
    found = _function_def(fn)
    if found is None:
        raise ValueError(f"no source for {fn.__qualname__}")
    node, _source, first_line, filename = found
    original_lines, _ = inspect.getsourcelines(fn)
    lines = list(original_lines)
    # ast positions are relative to the dedented source: add back the margin dedent removed.
    margin = len(lines[0]) - len(lines[0].lstrip())
    args = _positional_args(node)
    # Insert right after each parameter name; from the last edit backwards so that offsets stay valid.
    # (ast column offsets count UTF-8 bytes; the margin is ASCII whitespace.)
    edits = sorted(
        ((args[i].lineno - 1, margin + args[i].end_col_offset, f": {t}") for i, t in annotations.items()), reverse=True
    )
    for line, column, text in edits:
        encoded = lines[line].encode()
        lines[line] = (encoded[:column] + text.encode() + encoded[column:]).decode()
    annotated_filename = filename + ANNOTATED_FILE_SUFFIX
    _overlay_source(annotated_filename, filename, first_line, lines)
    # Compiled nested in a factory taking the free variables, so that they stay free variables (closure cells)
    # of the copy; padding puts the definition on its original line.
    free_vars = fn.__code__.co_freevars
    factory = f"def __pysf_factory({', '.join(free_vars)}):\n{textwrap.indent(textwrap.dedent(''.join(lines)), '    ')}"
    text = "\n" * max(first_line - 2, 0) + factory
    # Annotations stay unevaluated (TorchScript reads them from the source), so their names need not exist.
    module_code = compile(text, annotated_filename, "exec", flags=__future__.annotations.compiler_flag, dont_inherit=True)
    (factory_code,) = [c for c in module_code.co_consts if isinstance(c, types.CodeType)]
    (code,) = [c for c in factory_code.co_consts if isinstance(c, types.CodeType) and c.co_name == node.name]
    cells = dict(zip(free_vars, fn.__closure__ or ()))
    copy = types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__, tuple(cells[n] for n in code.co_freevars))
    copy.__kwdefaults__ = fn.__kwdefaults__
    copy.__qualname__, copy.__module__, copy.__doc__ = fn.__qualname__, fn.__module__, fn.__doc__
    return copy


def _overlay_source(annotated_filename: str, filename: str, first_line: int, function_lines: List[str]) -> None:
    """Write ``function_lines`` over lines ``first_line...`` of the linecache entry ``annotated_filename``
    (created from ``filename``'s lines)."""
    entry = linecache.cache.get(annotated_filename)
    base = list(entry[2]) if entry is not None else list(linecache.getlines(filename))
    needed = first_line - 1 + len(function_lines)
    base += ["\n"] * max(0, needed - len(base))
    base[first_line - 1 : needed] = [line if line.endswith("\n") else line + "\n" for line in function_lines]
    linecache.cache[annotated_filename] = (sum(map(len, base)), None, base, annotated_filename)


def _contract_for(cls: type, method_name: str) -> Optional[List[Optional[str]]]:
    for base, methods in _CONTRACT_METHODS.items():
        if issubclass(cls, base) and method_name in methods:
            return _contract(base, method_name)
    return None


def _user_methods(cls: type) -> Iterable[Tuple[str, types.FunctionType]]:
    """Methods of ``cls`` TorchScript may compile that come from user code (not pysf's bases, torch or dunders)."""
    seen = set()
    for klass in cls.__mro__:
        if klass in _CONTRACT_METHODS or klass.__module__.startswith("torch") or klass is object:
            break
        for name, raw in vars(klass).items():
            if name in seen or name == "__init__" or (name.startswith("__") and name.endswith("__")):
                continue
            seen.add(name)
            # Plain methods only: static/class methods and properties keep their own binding rules.
            fn = getattr(cls, name, None)
            if not isinstance(raw, types.FunctionType) or not _is_plain_function(fn):
                continue
            if not _defined_by_pysf_base(fn) and not _is_ignored_by_torchscript(fn):
                yield name, fn


def _is_ignored_by_torchscript(fn: Callable) -> bool:
    try:
        return bool(torch._jit_internal.is_ignored_fn(fn))  # @torch.jit.ignore / @torch.jit.unused
    except Exception:  # noqa: BLE001 - private API: if it changes, compile as usual
        return False


def _annotations_for(module: nn.Module, receives_obs_dict: bool) -> Dict[str, Dict[int, str]]:
    """Method name -> missing annotations, for the class of ``module``."""
    cls = type(module)
    wanted: Dict[str, Dict[int, str]] = {}
    for name, fn in _user_methods(cls):
        found = _function_def(fn)
        if found is None:
            continue
        node = found[0]
        contract = _contract_for(cls, name)
        if contract is not None and isinstance(module, Encoder) and name == "forward":
            first = _positional_args(node)[1] if len(_positional_args(node)) > 1 else None
            if not receives_obs_dict and (first is None or not _used_as_dict(node, first.arg)):
                contract = None  # a nested encoder of one tensor: TorchScript's default is right
        missing = _missing_annotations(node, contract)
        if missing:
            wanted[name] = missing
    return wanted


def _generated_subclass(cls: type, wanted: Dict[str, Dict[int, str]]) -> type:
    key = tuple(sorted((name, tuple(sorted(a.items()))) for name, a in wanted.items()))
    per_class = _GENERATED.setdefault(cls, {})
    if key not in per_class:
        methods = {name: annotated_copy(getattr(cls, name), annotations) for name, annotations in wanted.items()}
        namespace = dict(methods, __module__=cls.__module__, __qualname__=cls.__qualname__, __pysf_annotated_from__=cls)
        per_class[key] = type(cls.__name__, (cls,), namespace)
    return per_class[key]


def supply_contract_annotations(model: nn.Module) -> List[str]:
    """Give the modules of ``model`` (an inference copy: it is changed in place) annotated subclasses.

    Returns ``"component.method"`` descriptions of what was annotated (for logs and tests). Methods whose
    source cannot be read are left as they are (TorchScript then reports the real problem).
    """
    annotated: List[str] = []
    parents: Dict[int, nn.Module] = {}
    for parent in model.modules():
        for child in parent.children():
            parents.setdefault(id(child), parent)
    for name, module in model.named_modules():
        if getattr(type(module), "__pysf_annotated_from__", None) is not None:
            continue
        receives_obs_dict = isinstance(parents.get(id(module)), ActorCritic)
        wanted = _annotations_for(module, receives_obs_dict)
        if not wanted:
            continue
        try:
            module.__class__ = _generated_subclass(type(module), wanted)
        except (ValueError, SyntaxError, TypeError):
            continue  # leave it to TorchScript to report
        annotated.extend(f"{name or type(module).__name__}.{method}" for method in sorted(wanted))
    return annotated


def original_class(cls: type) -> type:
    """The user's class behind a generated subclass (``cls`` itself otherwise)."""
    return getattr(cls, "__pysf_annotated_from__", None) or cls


def forget_compiled_classes(model: nn.Module) -> None:
    """Drop TorchScript's half-built types of the classes in ``model`` after a failed compile.

    TorchScript caches a type per module class; when compiling a class's methods fails, the type stays cached
    without them and the next attempt reports "Can't redefine method" instead of the real problem. Forgetting
    those types (only those: fully compiled types must stay, TorchScript reuses them by name) makes the next
    compile start afresh for the failed classes.
    """
    from torch.jit._recursive import concrete_type_store

    classes = set()
    for module in model.modules():
        classes.update((type(module), original_class(type(module))))
    for cls in classes:
        cached = concrete_type_store.type_store.get(cls)
        if not cached:
            continue
        healthy = [t for t in cached if t in concrete_type_store.methods_compiled]
        if healthy:
            concrete_type_store.type_store[cls] = healthy
        else:
            del concrete_type_store.type_store[cls]
