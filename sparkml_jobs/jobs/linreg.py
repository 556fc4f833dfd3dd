"""The ``linreg`` actions: fit (plain, categorical or formula designs), update, predict,
evaluate.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from typing import Any

from sparkml_jobs.errors import InputError
from sparkml_jobs.io import design as encoding
from sparkml_jobs.io import levels, models, persist, read, sources, sparkml
from sparkml_jobs.jobs.common import (
    check_report,
    load_input,
    scoring_input,
    skip_bad_rows,
    skipping,
    start_session,
    write_predictions,
    write_report,
)
from sparkml_jobs.regression import formula as fm
from sparkml_jobs.regression.estimator import LinearRegression
from sparkml_jobs.regression.estimator import update as update_linreg
from sparkml_jobs.reporting import tables

log = logging.getLogger("sparkml_jobs")


def linreg_fit(args: argparse.Namespace) -> dict[str, Any]:

    check_report(args)
    if len(args.reg_param) > 1 and args.cv < 2:
        raise InputError("a list of --reg-param values needs --cv K (K >= 2) to choose among them")
    estimator = LinearRegression(
        fit_intercept=args.fit_intercept,
        reg_param=args.reg_param[0],
        on_singular=args.on_singular,
        solver=args.solver,
        alias_tol=args.alias_tol,
        refine=args.refine,
        residual_pass=args.residual_pass,
    )
    if args.label is None and not args.formula:
        if args.format == "libsvm":
            args.label = "label"
        else:
            raise InputError("linreg fit needs --label NAME (or --formula 'y ~ ...')")
    spark = start_session(args)
    data, design = _linreg_fit_data(spark, args)
    if design is not None:  # a formula says itself whether it has an intercept ('- 1')
        estimator = dataclasses.replace(estimator, fit_intercept=design.fit_intercept)
    log.info("fitting linear regression on %s (%d features)", args.input, data.n_features)
    if args.cv:
        model = estimator.fit_cv(data, args.reg_param, args.cv)
    else:
        model = estimator.fit(data)
    model = dataclasses.replace(model, design=design)
    models.save_linreg(model, args.output, args.overwrite)
    log.info("model saved to %s", args.output)
    print(tables.linreg_table(model))
    write_report(args, model)
    return tables.linreg_metrics(model)


def _linreg_fit_data(spark, args: argparse.Namespace):
    """(BlockData, design): a --formula, or --features with a text or boolean column, is
    encoded (levels found in one scan); plain numeric features take the direct path, local
    Parquet of numbers without building Spark's reader at all."""
    if args.format == "parquet" and not args.formula and not skipping(args):
        data = read.load_listed_parquet(
            spark,
            args.input,
            label=args.label,
            features=args.features,
            weight=args.weight_col,
            num_partitions=args.partitions,
            booleans=False,
        )
        if data is not None:
            return data, None
    frame = sources.read_source(spark, args.input, args.format, delimiter=args.delimiter)
    if args.formula:
        formula = fm.parse(args.formula)
    else:
        features = args.features or [
            c for c in sources.data_columns(frame) if c not in (args.label, args.weight_col)
        ]
        if not levels.has_categories(frame, features, mixed_is_numeric=skipping(args)):
            weight = args.weight_col
            return load_input(
                spark, args, label=args.label, features=args.features, weight=weight
            ), None
        formula = fm.from_columns(args.label, features, args.fit_intercept)
    design = encoding.fit_design(
        frame,
        formula,
        args.input,
        max_levels=args.max_levels,
        handle_invalid=getattr(args, "handle_invalid", "error"),
    )
    for name, found in design.levels.items():
        log.info("categorical %s: %d levels, reference %r", name, len(found), found[0])
    if skipping(args):
        used = formula.columns() + ([args.weight_col] if args.weight_col else [])
        categorical = frozenset(formula.factors[name].column for name in design.levels)
        frame = skip_bad_rows(frame, args, used, categorical)
    data = encoding.to_data(
        frame, design, args.input, weight=args.weight_col, num_partitions=args.partitions
    )
    return data, design


def _encoded_input(
    spark,
    args: argparse.Namespace,
    model,
    path: str,
    handle_unknown: str,
    *,
    used: list[str] | None = None,
):
    """(frame, unseen levels) of a formula model's input, its levels checked. With ``used``
    (the columns read, under ``--handle-invalid skip``) the bad rows are dropped first."""
    frame = sources.read_source(spark, path, args.format, delimiter=args.delimiter)
    if used is not None:
        design = model.design
        categorical = frozenset(design.formula.factors[name].column for name in design.levels)
        frame = skip_bad_rows(frame, args, used, categorical)
    unseen = encoding.check_levels(
        frame,
        model.design,
        path,
        handle_unknown=handle_unknown,
        handle_invalid=getattr(args, "handle_invalid", "error"),
    )
    for column, found in unseen.items():
        log.info(
            "column '%s': %d rows with %d unseen level(s) get all-zero dummies",
            column,
            found["rows"],
            found["levels"],
        )
    return frame, unseen


def _category_columns(design) -> list[str]:
    """The input columns a design reads as categories."""
    factors = design.formula.factors
    return list(dict.fromkeys(factors[name].column for name in design.levels))


def linreg_update(args: argparse.Namespace) -> dict[str, Any]:

    if not args.input and not args.subtract:
        raise InputError(
            "linreg update needs --input (rows to add) and/or --subtract (rows to remove)"
        )
    spark = start_session(args)
    model = models.load_linreg(args.model)
    if model.label is None:
        raise InputError(f"model {args.model} has no label recorded")

    def part(path: str | None):
        if path is None:
            return None
        if model.design is not None:  # new rows cannot bring new levels: no column for them
            frame, _ = _encoded_input(spark, args, model, path, "error")
            return encoding.to_data(
                frame, model.design, path, weight=model.weight_col, num_partitions=args.partitions
            )
        return read.load(
            spark,
            path,
            args.format,
            label=model.label,
            features=model.features,
            weight=model.weight_col,
            delimiter=args.delimiter,
            num_partitions=args.partitions,
        )

    updated = update_linreg(model, part(args.input), part(args.subtract))
    models.save_linreg(updated, args.output, args.overwrite)
    log.info("model saved to %s", args.output)
    print(tables.linreg_table(updated))
    return tables.linreg_metrics(updated)


def linreg_predict(args: argparse.Namespace) -> dict[str, Any]:

    spark = start_session(args)
    model = sparkml.load_linreg(args.model, args.features)  # ours or a Spark ML model
    options = dict(interval=args.interval, level=args.level)
    if model.design is None:
        frame = scoring_input(spark, args, model.features)
        return write_predictions(spark, args, model.predict(frame, **options))
    numbers = encoding.numeric_inputs(model.design)
    used = None
    if skipping(args):
        used = numbers + _category_columns(model.design)
    elif numbers:  # the numeric inputs checked as before (nulls, text, NaN, ragged rows)
        read.read_for_scoring(spark, args.input, args.format, numbers, delimiter=args.delimiter)
    frame, unseen = _encoded_input(spark, args, model, args.input, args.handle_unknown, used=used)
    corrupt = sources.corrupt_column(frame)
    if corrupt is not None:
        frame = frame.drop(sources.col(corrupt))
    frame, hidden = encoding.for_scoring(frame, model.design)
    scored = model.predict(frame, columns=hidden, **options).drop(*hidden)
    result = write_predictions(spark, args, scored)
    return {**result, **({"unknown_levels": unseen} if unseen else {})}


def linreg_evaluate(args: argparse.Namespace) -> dict[str, Any]:

    spark = start_session(args)
    model = models.load_linreg(args.model)
    label = args.label or model.label
    if label is None:
        raise InputError("evaluation needs --label (the model has none recorded)")
    unseen = {}
    if model.design is not None:
        if label != model.label:
            raise InputError(f"the model's formula has the label {model.label!r}, not {label!r}")
        used = None
        if skipping(args):
            weight = [args.weight_col] if args.weight_col else []
            used = model.design.formula.columns() + weight
        frame, unseen = _encoded_input(
            spark, args, model, args.input, args.handle_unknown, used=used
        )
        data = encoding.to_data(
            frame, model.design, args.input, weight=args.weight_col, num_partitions=args.partitions
        )
    else:
        data = load_input(spark, args, label=label, features=model.features, weight=args.weight_col)
    metrics = model.evaluate(data)
    if unseen:
        metrics["unknown_levels"] = unseen
    print(persist.dumps(metrics), end="")  # the --metrics-json text: null, never NaN
    return metrics
