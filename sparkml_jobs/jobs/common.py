"""The steps every action shares: the session and the output checks it makes possible, the
Spark settings, reading the input (with the bad-row policy), writing predictions and reports.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from sparkml_jobs.clustering.estimator import INITS
from sparkml_jobs.errors import InputError
from sparkml_jobs.io import filesystem, invalid, persist, read, sources, sparkml
from sparkml_jobs.reporting import figures, pages
from sparkml_jobs.session import session_for

log = logging.getLogger("sparkml_jobs")


def start_session(args: argparse.Namespace):
    """The session, then the output checks that need its file systems (before any data is read)."""
    spark = session_for(args)
    if getattr(args, "input_table", None):
        args.input, args.format = args.input_table, sources.TABLE
    check_outputs(args)
    return spark


def load_input(
    spark,
    args: argparse.Namespace,
    *,
    label: str | None,
    features: list[str] | None,
    weight: str | None = None,
):
    """The input's blocks; with ``--handle-invalid skip`` the bad rows are dropped (and counted,
    and written to ``--rejects``) first. The account is kept on ``args`` for the metrics."""
    if not skipping(args):
        return read.load(
            spark,
            args.input,
            args.format,
            label=label,
            features=features,
            weight=weight,
            delimiter=args.delimiter,
            num_partitions=args.partitions,
        )
    frame = sources.read_source(spark, args.input, args.format, delimiter=args.delimiter)
    features = read.resolve_columns(
        frame, args.input, label=label, features=features, weight=weight
    )
    frame = skip_bad_rows(frame, args, features + [c for c in (label, weight) if c is not None])
    return read.to_blocks(
        frame,
        args.input,
        features=features,
        label=label,
        weight=weight,
        num_partitions=args.partitions,
    )


def skipping(args: argparse.Namespace) -> bool:
    """Whether the action runs under ``--handle-invalid skip``."""
    return getattr(args, "handle_invalid", "error") == "skip"


def skip_bad_rows(
    frame, args: argparse.Namespace, used: list[str], categorical: frozenset[str] = frozenset()
):
    """``frame`` without the rows that are bad in a ``used`` column or ragged (counted, kept on
    ``args`` for the metrics, written to ``--rejects``): the one mechanism of every action."""
    frame, args.row_account = invalid.skip_invalid(
        frame,
        args.input,
        list(dict.fromkeys(used)),
        categorical=categorical,
        rejects=getattr(args, "rejects", None),
        overwrite=getattr(args, "overwrite", False),  # evaluate has no --overwrite
    )
    return frame


def scoring_input(spark, args: argparse.Namespace, features: list[str]):
    """The rows to score with a model reading ``features``: every input column as read. Under
    ``error`` a bad cell or ragged row stops the job; under ``skip`` such rows are dropped."""
    if not skipping(args):
        return read.read_for_scoring(
            spark, args.input, args.format, features, delimiter=args.delimiter
        )
    frame = sources.read_source(spark, args.input, args.format, delimiter=args.delimiter)
    read.resolve_columns(frame, args.input, label=None, features=features)
    frame = skip_bad_rows(frame, args, features)
    corrupt = sources.corrupt_column(frame)
    return frame if corrupt is None else frame.drop(sources.col(corrupt))


def with_row_account(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, Any]:
    """The action's metrics plus, under ``--handle-invalid skip``, rows read / used / rejected."""
    account = getattr(args, "row_account", None)
    if account is None:
        return result
    print(f"input: {account.line()}")
    return {**result, "input": account.to_dict()}


def check_report(args: argparse.Namespace) -> None:
    """Before any Spark work: --report needs matplotlib (the directory is checked later)."""
    if getattr(args, "report", None):
        figures.require_matplotlib()


def _overlaps(a: str, b: str) -> bool:
    """Whether qualified paths ``a`` and ``b`` are equal or one lies inside the other."""
    a, b = a.rstrip("/") + "/", b.rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)


def check_outputs(args: argparse.Namespace) -> None:
    """Once the session is up: every output is free (or ``--overwrite``), apart from the others,
    and never equal to, inside or around an input or the model, ``--overwrite`` or not."""
    fs = filesystem.current()
    named = lambda flag: getattr(args, flag.lstrip("-").replace("-", "_"), None)  # noqa: E731
    flags = ("--output", "--report", "--rejects", "--metrics-json")
    outputs = [(flag, named(flag)) for flag in flags]
    outputs = [(flag, value, fs.qualify(value)) for flag, value in outputs if value]
    inputs = [(flag, named(flag)) for flag in ("--input", "--subtract", "--model", "--init")]
    # --init spark-ml:DIR names the directory DIR
    inputs = [(f, v and v.removeprefix(sparkml.INIT_PREFIX)) for f, v in inputs]
    inputs = [
        (flag, fs.qualify(value))
        for flag, value in inputs
        if value
        and not (flag == "--input" and getattr(args, "format", None) == sources.TABLE)
        and not (flag == "--init" and value in INITS)
    ]
    for i, (flag, value, target) in enumerate(outputs):
        for source_flag, source in inputs:
            if _overlaps(target, source):
                raise InputError(
                    f"{flag} {value} would overwrite {source_flag}: choose another path"
                )
        for other_flag, _, other in outputs[:i]:
            if _overlaps(target, other):
                raise InputError(f"{flag} {value} lies inside or around {other_flag}")
        if flag != "--metrics-json":
            persist.check_output(value, args.overwrite, fs)


def write_report(args: argparse.Namespace, model) -> None:
    if not getattr(args, "report", None):
        return

    write = pages.linreg_report if args.algo == "linreg" else pages.kmeans_report
    page = write(model, args.report, source=args.input, overwrite=args.overwrite)
    log.info("report written to %s", page)


def write_predictions(spark, args: argparse.Namespace, frame) -> dict[str, Any]:
    """Predictions as Parquet files published at ``--output``, or as ``--output-table``."""
    partition_by = args.partition_by or []
    missing = [c for c in partition_by if c not in frame.columns]
    if missing:
        raise InputError(f"--partition-by: no column(s) {', '.join(map(repr, missing))} to use")
    if args.output_table:
        persist.write_table(frame, args.output_table, partition_by, args.overwrite)
        log.info("predictions written to table %s", args.output_table)
        return {"rows": spark.table(args.output_table).count(), "table": args.output_table}
    with persist.spark_output(args.output, args.overwrite) as tmp:
        frame.write.partitionBy(*partition_by).parquet(tmp)
    log.info("predictions written to %s", args.output)
    return {"rows": spark.read.parquet(args.output).count(), "output": args.output}
