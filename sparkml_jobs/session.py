"""Building (or reusing) the SparkSession the jobs run on."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from typing import Any

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

DEFAULT_MASTER = "local[*]"


def launched_by_spark_submit() -> bool:
    """True when this Python driver was started by ``spark-submit`` (it passes a gateway port)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def get_session(
    master: str | None = None,
    app_name: str = "sparkml-jobs",
    conf: dict[str, str] | None = None,
) -> SparkSession:
    """Return the active SparkSession, or build one.

    Parameters
    ----------
    master : str, optional
        Master URL. ``None`` keeps the master chosen by ``spark-submit`` when launched by it,
        and otherwise runs embedded on ``local[*]``.
    app_name : str
        Application name shown in the Spark UI / logs.
    conf : dict, optional
        Extra Spark configuration.
    """
    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        apply_runtime_conf(active, conf or {})
        return active
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    elif not launched_by_spark_submit():
        builder = builder.master(DEFAULT_MASTER)
    effective_master = master or ("" if launched_by_spark_submit() else DEFAULT_MASTER)
    defaults = {
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
    }
    # One task per core is Spark's model: a multi-threaded BLAS inside each Python worker
    # oversubscribes the cores (measured: a 16k×10 GEMM takes 0.7 ms on one thread, 18 ms on two
    # threads while the other core runs a task). The driver keeps its threads for the solves.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        defaults[f"spark.executorEnv.{var}"] = os.environ.get(f"SPARKML_EXECUTOR_{var}", "1")
    if effective_master.startswith("local"):
        # embedded runs stay on loopback (and Spark stops warning about the host name)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        defaults["spark.driver.host"] = "127.0.0.1"
        defaults["spark.driver.bindAddress"] = "127.0.0.1"
    if effective_master.startswith("local") and "PYSPARK_PYTHON" not in os.environ:
        # Python workers must run this interpreter, which has numpy/pyarrow installed; the
        # SparkContext reads the worker executable from the environment, not from the conf.
        os.environ["PYSPARK_PYTHON"] = sys.executable
        defaults["spark.pyspark.python"] = sys.executable
    for key, value in {**defaults, **(conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    if not getattr(spark, "_sparkml_announced", False):  # once, not again from start_early's
        spark._sparkml_announced = True  # type: ignore[attr-defined]  (thread and the action)
        log.info("spark session: master=%s", spark.sparkContext.master)
    return spark


def spark_conf(args: Any) -> dict[str, str]:
    """``--conf`` settings and ``--driver-memory`` of a parsed command line as one Spark
    configuration."""
    conf = dict(getattr(args, "conf", None) or [])
    if getattr(args, "catalog", None) == "hive":
        conf["spark.sql.catalogImplementation"] = "hive"
    if getattr(args, "driver_memory", None):
        conf["spark.driver.memory"] = args.driver_memory
    return conf


def session_for(args: Any) -> SparkSession:
    """The session of a parsed command line (``--master``, ``--conf``, ``--driver-memory``)."""
    action = "demo" if args.algo == "demo" else f"{args.algo} {getattr(args, 'action', '')}"
    master = getattr(args, "master", None)
    return get_session(master, app_name=f"sparkml-jobs {action}", conf=spark_conf(args))


def start_early(args: Any) -> None:
    """Build :func:`session_for` ``args`` in a background thread, so the JVM starts while the
    caller imports the job code (measured: ~1.5 s of a 15 s linreg job). Nothing is reported
    from here: if the start fails, the action's own call fails the same way and says why. A
    process that already has a session (notebooks, tests) keeps it and starts nothing. Both
    calls build through ``SparkSession.builder``, whose class lock makes the second wait for
    the first and return its session."""
    if SparkSession._instantiatedSession is not None:
        return

    def start() -> None:
        with contextlib.suppress(BaseException):
            session_for(args)

    threading.Thread(target=start, name="sparkml-jobs-spark-start", daemon=True).start()


def apply_runtime_conf(spark: SparkSession, conf: dict[str, str]) -> None:
    """Settings for a session that is already running (in-process use, notebooks, tests).

    ``spark.hadoop.*`` keys go to the Hadoop configuration every file system is built from;
    runtime SQL settings are set; a setting only a new JVM can take (driver memory, master,
    jars) is refused in one line rather than silently ignored.
    """
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in conf.items():
        if key.startswith("spark.hadoop."):
            hadoop.set(key[len("spark.hadoop.") :], value)
            continue
        try:
            spark.conf.set(key, value)
        except Exception as exc:  # static / core settings of the running context
            from sparkml_jobs.errors import InputError

            raise InputError(
                f"--conf {key} cannot change in the already running Spark session "
                "(pass it to spark-submit or set it before the session starts)"
            ) from exc
