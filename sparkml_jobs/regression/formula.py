"""Pure: model formulas — parse (patsy), the term structure and statsmodels' column names.

``log(y) ~ a + b + I(b**2) + group + a:group`` is parsed by patsy's :class:`~patsy.ModelDesc`
(the grammar statsmodels users type: ``+ - 0 1 : * / **``). Each factor's code (``I(b ** 2)``,
``log(y)``, ``C(group)``, ``Q("odd.name")``) is then checked against a small whitelist with
Python's :mod:`ast` — column names, numbers, ``+ - * / **``, unary minus and the transforms of
:data:`FUNCTIONS` — so nothing a user writes is ever evaluated in Python: :mod:`~sparkml_jobs.io.
design` turns the same trees into Spark SQL expressions.

Which design columns a formula makes, in which order and under which names, is patsy's own
decision (its ``design_matrix_builders``: treatment coding, full rank where the terms before a
term do not already span its categorical part, terms without numeric factors first). We hand it
stand-in factors that know only what the data told us — numeric, or categorical with these
sorted levels — so the names are exactly statsmodels' (``group[T.b]``, ``a:group[T.b]``,
``I(b ** 2)``) and a summary can be read next to statsmodels' line by line.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sparkml_jobs.errors import InputError

# numpy's element-wise transforms a formula may use, by every name statsmodels users write them
FUNCTIONS = ("log", "log1p", "exp", "sqrt", "abs")
_MODULES = ("np", "numpy")
_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
INTERCEPT = "Intercept"

Level = str | int | float | bool  # a category's value, as JSON keeps it


# --------------------------------------------------------------------------- expression trees


@dataclass(frozen=True, kw_only=True)
class Expr:
    """A numeric expression on columns: ``op`` is ``col``, ``num``, a function, ``neg`` or an
    operator; ``value`` the column name or number; ``args`` the operands."""

    op: str
    value: Any = None
    args: tuple[Expr, ...] = ()

    def columns(self) -> list[str]:
        """The columns the expression reads, in order of first use."""
        if self.op == "col":
            return [self.value]
        return list(dict.fromkeys(c for a in self.args for c in a.columns()))


def _column_name(node: ast.expr) -> str | None:
    """``x`` or ``Q("x")`` (patsy's quoting of any column name) → the column name."""
    if isinstance(node, ast.Name):
        return node.id
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "Q"
        and len(node.args) == 1
        and not node.keywords
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return node.args[0].value
    return None


def _function_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        if node.value.id in _MODULES:
            return node.attr
    return None


def _to_expr(node: ast.expr, code: str) -> Expr:
    name = _column_name(node)
    if name is not None:
        return Expr(op="col", value=name)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return Expr(op="num", value=float(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _to_expr(node.operand, code)
        return Expr(op="neg", args=(inner,)) if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        args = (_to_expr(node.left, code), _to_expr(node.right, code))
        return Expr(op=_OPERATORS[type(node.op)], args=args)
    if isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords:
        function = _function_name(node.func)
        if function == "I":
            return _to_expr(node.args[0], code)
        if function in FUNCTIONS:
            return Expr(op=function, args=(_to_expr(node.args[0], code),))
        if function == "C":
            raise InputError(f"formula: C(...) must be a whole factor, not inside {code!r}")
    raise InputError(
        f'formula: cannot evaluate {code!r}: a factor may use column names (Q("name") for any '
        f"name), numbers, + - * / **, I(...), C(column) and {', '.join(FUNCTIONS)} (or np.log …)"
    )


# --------------------------------------------------------------------------- factors, formulas


@dataclass(frozen=True, kw_only=True)
class Factor:
    """One factor of a formula.

    ``categorical`` is True for ``C(x)``, False for an expression (``log(x)``, ``I(a*b)``) and
    None for a bare column, which is categorical when its values are text or booleans.
    """

    name: str  # patsy's (normalised code), or the column's own name on the --features path
    expr: Expr
    categorical: bool | None

    @property
    def column(self) -> str | None:
        """The column of a bare or ``C(...)`` factor."""
        return self.expr.value if self.expr.op == "col" else None


def parse_factor(code: str, name: str | None = None) -> Factor:
    """A factor from its code (as patsy normalised it); refused unless on the whitelist."""
    try:
        node = ast.parse(code, mode="eval").body
    except SyntaxError as exc:
        raise InputError(f"formula: cannot parse {code!r}: {exc.msg}") from exc
    if isinstance(node, ast.Call) and _function_name(node.func) == "C":
        column = _column_name(node.args[0]) if len(node.args) == 1 else None
        if column is None or node.keywords:
            raise InputError(
                f'formula: {code!r}: C() takes one column here (C(x) or C(Q("x"))); other '
                "codings and reference levels are not supported (treatment coding, the first "
                "sorted level as reference)"
            )
        return Factor(name=name or code, expr=Expr(op="col", value=column), categorical=True)
    expr = _to_expr(node, code)
    categorical = None if expr.op == "col" else False
    return Factor(name=name or code, expr=expr, categorical=categorical)


@dataclass(frozen=True, kw_only=True)
class Formula:
    """A parsed formula: the label's factor, the terms (tuples of factor names) and intercept.

    ``text`` is None for the formula ``label ~ f1 + f2 + …`` that ``--features`` implies, whose
    factors are named by their columns (``cut[T.Good]``, not ``Q("cut")[T.Good]``).
    """

    text: str | None
    label: Factor
    factors: dict[str, Factor]
    terms: tuple[tuple[str, ...], ...]
    intercept: bool

    def columns(self) -> list[str]:
        """Every input column the formula reads (label first), in order of first use."""
        names = [*self.label.expr.columns()]
        for factor in self.factors.values():
            names += factor.expr.columns()
        return list(dict.fromkeys(names))


def parse(text: str) -> Formula:
    """Parse ``text`` (``y ~ a + b``); :class:`InputError` with patsy's message if invalid."""
    import patsy

    try:
        desc = patsy.ModelDesc.from_formula(text)
    except patsy.PatsyError as exc:
        where = str(exc).splitlines()
        raise InputError(
            f"formula {text!r}: {where[0] if where else exc}"
            + (f" (at column {where[-1].index('^') - 3})" if where and "^" in where[-1] else "")
        ) from exc
    lhs = desc.lhs_termlist
    if len(lhs) != 1 or len(lhs[0].factors) != 1:
        raise InputError(
            f"formula {text!r}: the left of '~' must be one label expression, e.g. 'log(y) ~ a'"
        )
    label = parse_factor(lhs[0].factors[0].code)
    if label.categorical:
        raise InputError(f"formula {text!r}: the label {label.name!r} cannot be categorical")
    factors: dict[str, Factor] = {}
    terms = []
    for term in desc.rhs_termlist:
        for f in term.factors:
            factors.setdefault(f.code, parse_factor(f.code))
        terms.append(tuple(f.code for f in term.factors))
    intercept = () in terms
    terms = [t for t in terms if t]
    if not terms:
        raise InputError(f"formula {text!r}: no terms on the right of '~'")
    return Formula(text=text, label=label, factors=factors, terms=tuple(terms), intercept=intercept)


def from_columns(label: str, features: Sequence[str], intercept: bool) -> Formula:
    """The formula ``label ~ f1 + f2 + …`` (``- 1`` without intercept), factors named by column."""
    factors = {c: Factor(name=c, expr=Expr(op="col", value=c), categorical=None) for c in features}
    return Formula(
        text=None,
        label=Factor(name=label, expr=Expr(op="col", value=label), categorical=None),
        factors=factors,
        terms=tuple((c,) for c in features),
        intercept=intercept,
    )


# --------------------------------------------------------------------------- the design


@dataclass(frozen=True, kw_only=True)
class DesignColumn:
    """One design column: the product of numeric factors times the indicator that each listed
    categorical factor takes the given level (index into its levels)."""

    name: str
    numeric: tuple[str, ...]
    levels: tuple[tuple[str, int], ...]


@dataclass(frozen=True, kw_only=True)
class Design:
    """The encoded design of a formula on data with these categorical levels."""

    formula: Formula
    levels: dict[str, list[Level]]  # categorical factor name → its sorted levels
    kinds: dict[str, str] = field(default_factory=dict)  # … → "text", "number" or "boolean"
    columns: list[DesignColumn] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def fit_intercept(self) -> bool:
        return self.formula.intercept


class _StandIn:
    """A patsy factor that knows only its name and what the data told us about it."""

    def __init__(self, name: str, levels: list[Level] | None) -> None:
        self._name, self._levels, self.origin = name, levels, None

    def name(self) -> str:
        return self._name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _StandIn) and other._name == self._name

    def __hash__(self) -> int:
        return hash(("sparkml_jobs", self._name))

    def memorize_passes_needed(self, state, eval_env) -> int:
        return 0

    def eval(self, state, data):
        from patsy.categorical import C

        if self._levels is None:
            return np.zeros((1, 1))
        return C(np.array(self._levels, dtype=object), levels=tuple(self._levels))


def sort_levels(values: Sequence[Level]) -> list[Level]:
    """Levels in patsy's order: sorted (numbers numerically, ``False`` before ``True``)."""
    return sorted(set(values))


def design(
    formula: Formula, levels: dict[str, list[Level]], kinds: dict[str, str] | None = None
) -> Design:
    """The design columns patsy would build, given each categorical factor's sorted levels.

    ``levels`` has an entry for every factor that is categorical (possibly after looking at the
    data); every other factor is numeric. A categorical factor needs at least one level.
    """
    import patsy
    from patsy.build import design_matrix_builders

    for name, values in levels.items():
        if not values:
            raise InputError(f"formula: factor {name!r} has no levels (no non-missing values)")
    stand_ins = {n: _StandIn(n, levels.get(n)) for n in formula.factors}
    terms = [patsy.Term([])] if formula.intercept else []
    terms += [patsy.Term([stand_ins[n] for n in t]) for t in formula.terms]
    (info,) = design_matrix_builders([terms], lambda: iter([{}]), eval_env=0)
    columns: list[DesignColumn] = []
    names = iter(info.column_names)
    for subterms in info.term_codings.values():
        for sub in subterms:
            widths = [
                sub.contrast_matrices[f].matrix.shape[1] if f in sub.contrast_matrices else 1
                for f in sub.factors
            ]
            # patsy's column order: the left-most factor's columns vary fastest
            for combo in itertools.product(*[range(w) for w in reversed(widths)]):
                combo = combo[::-1]
                numeric, indicators = [], []
                for f, j in zip(sub.factors, combo, strict=True):
                    if f in sub.contrast_matrices:
                        indicators.append((f.name(), _indicator_level(sub.contrast_matrices[f], j)))
                    else:
                        numeric.append(f.name())
                columns.append(
                    DesignColumn(name=next(names), numeric=tuple(numeric), levels=tuple(indicators))
                )
    if formula.intercept:
        assert columns[0].name == INTERCEPT and not columns[0].numeric and not columns[0].levels
        columns = columns[1:]
    kinds = kinds or {n: _kind_of(v) for n, v in levels.items()}
    return Design(formula=formula, levels=dict(levels), kinds=dict(kinds), columns=columns)


def _kind_of(values: list[Level]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "boolean"
    return "text" if all(isinstance(v, str) for v in values) else "number"


def _indicator_level(contrast, j: int) -> int:
    """The level a treatment-coded contrast column indicates (a 0/1 column with one 1)."""
    column = np.asarray(contrast.matrix)[:, j]
    ones = np.flatnonzero(column == 1)
    if len(ones) != 1 or np.count_nonzero(column) != 1:  # pragma: no cover - patsy's Treatment
        raise InputError("formula: only treatment coding is supported")
    return int(ones[0])


# --------------------------------------------------------------------------- persistence


def to_dict(d: Design) -> dict[str, Any]:
    """The JSON form saved in ``model.json``: the formula (or the --features columns), and each
    categorical factor's column, kind, levels and reference level."""
    f = d.formula
    return {
        "formula": f.text,
        "label": None if f.text is not None else f.label.name,
        "features": None if f.text is not None else [t[0] for t in f.terms],
        "intercept": f.intercept,
        "categorical": {
            name: {
                "column": f.factors[name].column,
                "kind": d.kinds[name],
                "levels": values,
                "reference": values[0],
            }
            for name, values in d.levels.items()
        },
    }


def from_dict(document: Any, where: str) -> Design:
    """Rebuild a saved design (re-parsed and re-derived, so a tampered file is refused)."""

    def require(ok: bool, message: str) -> None:
        if not ok:
            raise InputError(f"{where}: 'encoding': {message}")

    require(isinstance(document, dict), "must be an object")
    text, categorical = document.get("formula"), document.get("categorical")
    require(isinstance(categorical, dict), "'categorical' must be an object")
    if text is not None:
        require(isinstance(text, str), "'formula' must be a string")
        formula = parse(text)
    else:
        label, features = document.get("label"), document.get("features")
        require(isinstance(label, str), "'label' must be a column name")
        require(
            isinstance(features, list) and all(isinstance(c, str) for c in features),
            "'features' must be a list of column names",
        )
        formula = from_columns(label, features, bool(document.get("intercept", True)))
    levels, kinds = {}, {}
    for name, spec in categorical.items():
        factor = formula.factors.get(name)
        require(factor is not None and factor.column is not None, f"unknown factor {name!r}")
        require(isinstance(spec, dict), f"{name!r} must be an object")
        values, kind = spec.get("levels"), spec.get("kind")
        require(kind in KINDS, f"{name!r}: 'kind' must be one of {', '.join(KINDS)}")
        require(
            isinstance(values, list)
            and values
            and all(_is_level(v, kind) for v in values)
            and values == sort_levels(values),
            f"{name!r}: 'levels' must be a sorted list of distinct {kind} values",
        )
        levels[name], kinds[name] = values, kind
    return design(formula, levels, kinds)


KINDS = ("text", "number", "boolean")


def _is_level(value: Any, kind: str) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "text":
        return isinstance(value, str)
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)
