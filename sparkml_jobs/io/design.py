"""Formulas on Spark: categorical levels in one aggregation, the design as SQL column expressions.

A :class:`~sparkml_jobs.regression.formula.Formula` says which factors a model has; this module
looks at the data once to decide what each bare column is and which levels each categorical one
takes (:func:`~.levels.scan`: one exploded ``groupBy`` in the JVM, distinct values with their
counts, at most ``max_levels + 1`` per column reach the driver), then writes every design
column as a Spark SQL expression (:func:`design_columns`) — ``log``, ``I(b ** 2)``,
``a:group[T.x]`` become arithmetic and ``CASE WHEN`` on the JVM side, so the Arrow → numpy
block path stays numeric.

Which columns are categorical: ``C(x)`` always; a bare column when its Spark type is text or
boolean; in a CSV (every column arrives as text) when its values are not numbers — all of them:
a column mixing numbers and text is refused (``C(x)`` makes every value a level). Text used in
arithmetic (``log(cut)``) is refused. Numbers follow numpy: ``log(0)`` is −inf, ``log(−1)`` and
``0/0`` NaN, ``1/0`` inf (the validation counts then name the design column).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparkml_jobs.errors import InputError
from sparkml_jobs.io import read, sources
from sparkml_jobs.io.levels import (
    ALL,
    SNIFF,
    ColumnScan,
    levels_of,
    matches,
    scan,
)
from sparkml_jobs.regression import formula as fm

DEFAULT_MAX_LEVELS = 1000
INF, NAN = float("inf"), float("nan")


# --------------------------------------------------------------------------- the levels scan


# --------------------------------------------------------------------------- numeric expressions


def numeric(expr: fm.Expr) -> Column:
    """A formula expression as a double Spark column, with numpy's results at the edges."""
    if expr.op == "col":
        return read.as_double(expr.value)
    if expr.op == "num":
        return F.lit(float(expr.value))
    args = [numeric(a) for a in expr.args]
    if expr.op == "neg":
        return -args[0]
    if expr.op in ("+", "-", "*"):
        a, b = args
        return a + b if expr.op == "+" else a - b if expr.op == "-" else a * b
    if expr.op == "/":
        a, b = args
        at_zero = F.when(a > 0, F.lit(INF)).when(a < 0, F.lit(-INF)).otherwise(F.lit(NAN))
        return F.when(b.isNull() | a.isNull(), F.lit(None)).when(b == 0, at_zero).otherwise(a / b)
    if expr.op == "**":
        return F.pow(*args)
    x = args[0]
    if expr.op == "log":
        return _domain(x, x > 0, F.ln(x), x == 0)
    if expr.op == "log1p":
        return _domain(x, x > -1, F.log1p(x), x == -1)
    return {"exp": F.exp, "sqrt": F.sqrt, "abs": F.abs}[expr.op](x)


def _domain(x: Column, inside: Column, value: Column, edge: Column) -> Column:
    """``value`` inside the domain, −inf on its edge, NaN outside (numpy), null stays null."""
    return (
        F.when(x.isNull(), F.lit(None))
        .when(F.isnan(x), F.lit(NAN))
        .when(inside, value)
        .when(edge, F.lit(-INF))
        .otherwise(F.lit(NAN))
        .cast("double")
    )


def design_columns(design: fm.Design) -> list[Column]:
    """One double column per design column, named as the model's coefficients."""
    factors = design.formula.factors
    values = {n: numeric(f.expr) for n, f in factors.items() if n not in design.levels}
    out = []
    for column in design.columns:
        product = None
        for name in column.numeric:
            product = values[name] if product is None else product * values[name]
        if column.levels:
            missing, hit = F.lit(False), F.lit(True)
            for name, index in column.levels:
                source = factors[name].column
                missing = missing | sources.col(source).isNull()
                level = design.levels[name][index]
                hit = hit & matches(source, design.kinds[name], level)
            # an unseen level matches no level: all-zero dummies (refused before, unless asked)
            indicator = F.when(missing, F.lit(None)).when(hit, 1.0).otherwise(0.0).cast("double")
            product = indicator if product is None else product * indicator
        out.append(product.alias(column.name))
    return out


# --------------------------------------------------------------------------- fit: what is what


@dataclass(frozen=True, kw_only=True)
class _Plan:
    modes: dict[str, str]  # columns to scan
    numeric: set[str]  # columns used as numbers (label, expressions)
    typed: bool  # Spark knows the column types (not a CSV)


def _plan(frame: DataFrame, formula: fm.Formula, source: str) -> _Plan:
    available = sources.data_columns(frame)
    unknown = [c for c in formula.columns() if c not in available]
    if unknown:
        raise InputError(
            f"{source}: unknown column(s) {', '.join(map(repr, unknown))} in the formula "
            f"(columns: {', '.join(available)})"
        )
    types = {f.name: f.dataType for f in frame.schema.fields}
    typed = sources.corrupt_column(frame) is None
    modes: dict[str, str] = {}
    used = set(formula.label.expr.columns())
    for factor in formula.factors.values():
        column = factor.column
        if factor.categorical:
            modes[column] = ALL
        elif factor.categorical is None:
            dtype = types[column]
            if isinstance(dtype, T.BooleanType) or (typed and isinstance(dtype, T.StringType)):
                modes[column] = ALL
            elif isinstance(dtype, T.StringType):
                modes.setdefault(column, SNIFF)
            else:
                used.add(column)
        else:
            used.update(factor.expr.columns())
    for column in used:
        dtype = types[column]
        if typed and isinstance(dtype, T.StringType):
            raise InputError(
                f"{source}: column '{column}' holds text, which the formula uses as a number; a "
                f"text column can only be a factor of its own (or C({column}))"
            )
        if not isinstance(dtype, T.NumericType | T.BooleanType | T.StringType):
            raise InputError(
                f"{source}: column '{column}' has type {dtype.simpleString()}, not a number"
            )
    if modes and not typed:  # the scan runs anyway: let it check the CSV's numeric columns too
        for column in used:
            modes.setdefault(column, SNIFF)
    return _Plan(modes=modes, numeric=used, typed=typed)


def _example(scan_: ColumnScan) -> str:
    return f" (e.g. {scan_.values[0][0][:40]!r})" if scan_.values else ""


def fit_design(
    frame: DataFrame,
    formula: fm.Formula,
    source: str,
    *,
    max_levels: int = DEFAULT_MAX_LEVELS,
    handle_invalid: str = "error",
) -> fm.Design:
    """The design of ``formula`` on ``frame``: its categorical levels found in one scan."""
    plan = _plan(frame, formula, source)
    scans = scan(frame, plan.modes, max_levels) if plan.modes else {}
    types = {f.name: f.dataType for f in frame.schema.fields}
    strict = handle_invalid == "error"
    for column in plan.numeric:
        s = scans.get(column)
        if s is not None and plan.modes[column] == SNIFF and s.text_rows and strict:
            raise InputError(
                f"{source}: column '{column}' has {s.text_rows} non-numeric{_example(s)} "
                f"value(s) in {s.rows} rows"
            )
    levels: dict[str, list[fm.Level]] = {}
    kinds: dict[str, str] = {}
    for name, factor in formula.factors.items():
        column = factor.column
        if factor.categorical is False or column not in plan.modes:
            continue
        s = scans[column]
        if factor.categorical is None:
            if column in plan.numeric or (plan.modes[column] == SNIFF and not s.text_rows):
                continue  # a number
            if plan.modes[column] == SNIFF and s.numbers:
                if not strict:
                    continue  # skip: numbers with a few bad cells, whose rows are dropped
                raise InputError(
                    f"{source}: column '{column}' has {s.text_rows} non-numeric{_example(s)} "
                    f"value(s) in {s.rows} rows, the others are numbers: fix those rows, or "
                    f"write C({column}) in --formula to make every value a category"
                )
        if s.distinct > max_levels:
            raise InputError(
                f"{source}: column '{column}' has {s.distinct} distinct values, more than "
                f"--max-levels {max_levels}: leave it out of the model (an identifier is not a "
                "category) or raise --max-levels"
            )
        kind, values = levels_of([v for v, _ in s.values], types[column], plan.typed)
        if (
            factor.categorical is None
            and kind == "number"
            and isinstance(types[column], T.StringType)
        ):
            continue  # a CSV column of numbers, also scanned whole for a C() of it
        if s.nulls and strict:
            raise InputError(
                f"{source}: column '{column}' has {s.nulls} missing (empty) value(s) in "
                f"{s.rows} rows"
            )
        kinds[name], levels[name] = kind, values
    return fm.design(formula, levels, kinds)


# --------------------------------------------------------------------------- applying a design


def encode(frame: DataFrame, design: fm.Design, *, label: bool, weight: str | None) -> DataFrame:
    """The numeric design frame: features (named as the coefficients), label, weight, and the
    CSV corrupt-record column (so ragged rows are still counted)."""
    names = design.names
    label_name = design.formula.label.name
    taken = names + ([label_name] if label else [])
    if label and label_name in names:
        raise InputError(f"formula: the label {label_name!r} is also a term")
    if weight is not None and weight in taken:
        raise InputError(f"--weight-col {weight!r} is also a term or the label of the formula")
    corrupt = sources.corrupt_column(frame)
    return frame.select(
        *design_columns(design),
        *([numeric(design.formula.label.expr).alias(label_name)] if label else []),
        *([sources.col(weight)] if weight is not None else []),
        *([sources.col(corrupt)] if corrupt is not None else []),
    )


def check_levels(
    frame: DataFrame,
    design: fm.Design,
    source: str,
    *,
    handle_unknown: str = "error",
    handle_invalid: str = "error",
) -> dict[str, dict]:
    """Levels of the categorical columns not seen in training: exit 2 naming the column, the
    level and its rows, or (``handle_unknown="zero"``) per column the rows with an unseen level,
    how many such levels, and the most frequent (at most six, with their rows)."""
    known = {}
    for name, values in design.levels.items():
        known[design.formula.factors[name].column] = (design.kinds[name], values)
    if not known:
        return {}
    scans = scan(frame, dict.fromkeys(known, ALL), 5, known=known)
    unseen: dict[str, dict] = {}
    for column, s in scans.items():
        if s.nulls and handle_invalid == "error":
            raise InputError(
                f"{source}: column '{column}' has {s.nulls} missing (empty) value(s) in "
                f"{s.rows} rows"
            )
        if not s.text_rows:
            continue
        if handle_unknown != "zero":
            listed = ", ".join(f"{v!r} ({c} row{'s' * (c != 1)})" for v, c in s.values[:3])
            more = f" and {s.distinct - 3} more" if s.distinct > 3 else ""
            raise InputError(
                f"{source}: column '{column}' has level(s) not seen in training: {listed}{more}; "
                "--handle-unknown zero gives such rows all-zero dummies"
            )
        unseen[column] = {"rows": s.text_rows, "levels": s.distinct, "most_frequent": s.values}
    return unseen


def to_data(
    frame: DataFrame,
    design: fm.Design,
    source: str,
    *,
    weight: str | None = None,
    num_partitions: int | None = None,
):
    """The :class:`~.dataset.BlockData` of the encoded design (features, label, weight)."""
    data = read.to_blocks(
        encode(frame, design, label=True, weight=weight),
        source,
        features=design.names,
        label=design.formula.label.name,
        weight=weight,
        num_partitions=num_partitions,
    )
    data.frame = _diagnostics(frame, design, weight)
    return data


def _diagnostics(frame: DataFrame, design: fm.Design, weight: str | None) -> DataFrame:
    """The error path's typed selection (``_t{j}`` the value, ``_r{j}`` the raw text), where the
    raw text of a design column is the first non-numeric text among the columns it computes on,
    so a message shows the user's value ('Fair'), not the null of ``log('Fair')``."""
    factors = design.formula.factors
    values = [*design_columns(design), numeric(design.formula.label.expr)]
    inputs = [
        [c for n in column.numeric for c in factors[n].expr.columns()] for column in design.columns
    ]
    inputs.append(design.formula.label.expr.columns())
    if weight is not None:
        values.append(read.as_double(weight))
        inputs.append([weight])

    def raw(columns: list[str]) -> Column:
        texts = [
            F.when(read.as_double(c).isNull(), sources.col(c).cast("string"))
            for c in dict.fromkeys(columns)
        ]
        return F.coalesce(*texts, F.lit(None).cast("string"))

    return frame.select(
        *[v.alias(f"_t{j}") for j, v in enumerate(values)],
        *[raw(c).alias(f"_r{j}") for j, c in enumerate(inputs)],
    )


def for_scoring(frame: DataFrame, design: fm.Design) -> tuple[DataFrame, list[str]]:
    """``frame`` plus the design's columns under fresh names (dropped again after scoring)."""
    hidden: list[str] = []
    for j in range(len(design.columns)):
        hidden.append(sources.fresh_name(f"_design{j}", frame.columns + hidden))
    columns = [c.alias(h) for c, h in zip(design_columns(design), hidden, strict=True)]
    return frame.select(*[sources.col(c) for c in frame.columns], *columns), hidden


def numeric_inputs(design: fm.Design) -> list[str]:
    """The input columns a design reads as numbers (the label's excluded)."""
    names = [
        c
        for n, f in design.formula.factors.items()
        if n not in design.levels
        for c in f.expr.columns()
    ]
    return list(dict.fromkeys(names))
