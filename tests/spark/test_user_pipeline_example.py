"""Example: testing your own PySpark pipeline that uses sparkml-jobs, the way our users do.

Copy this pattern into your project. Your ``conftest.py`` holds one local session for the whole
suite (start-up costs seconds, so share it)::

    @pytest.fixture(scope="session")
    def spark():
        session = (
            SparkSession.builder.master("local[2]")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.pyspark.python", sys.executable)  # workers use this venv
            .getOrCreate()
        )
        yield session
        session.stop()

Here the suite's own ``spark`` fixture (tests/conftest.py) plays that part.
"""

from __future__ import annotations

import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparkml_jobs import KMeans, LinearRegression

# --------------------------------------------------------------------------- the user's pipeline


def price_pipeline(sales: DataFrame, listings: DataFrame) -> DataFrame:
    """A user's job step: fit prices on past sales, score the listings, flag the bargains
    (asking price below the model's estimate)."""
    model = LinearRegression().fit(sales, label="price", features=["area", "rooms"])
    return (
        model.transform(listings)
        .withColumn("bargain", F.col("asking") < F.col("prediction"))
        .select("id", "prediction", "bargain")
    )


def segment_pipeline(customers: DataFrame, starting_centres) -> DataFrame:
    """A user's job step: two customer segments by spend and visits."""
    model = KMeans(k=2, initial_centers=starting_centres, max_iter=10, tol=0.0)
    return model.fit(customers, ["spend", "visits"]).transform(customers).select("id", "cluster")


# --------------------------------------------------------------------------- the user's tests


def test_price_pipeline(spark):
    # past sales on the exact line price = 1000 + 20·area + 500·rooms: the fit is known exactly
    sales = spark.createDataFrame(
        [
            (a, r, 1000 + 20 * a + 500 * r)
            for a, r in [(50.0, 2.0), (80.0, 3.0), (65.0, 2.0), (120.0, 4.0)]
        ],
        "area double, rooms double, price double",
    )
    listings = spark.createDataFrame(
        [(1, 70.0, 3.0, 3000.0), (2, 100.0, 2.0, 4100.0)],
        "id int, area double, rooms double, asking double",
    )
    expected = spark.createDataFrame(
        [(1, 1000 + 20 * 70 + 500 * 3.0, True), (2, 1000 + 20 * 100 + 500 * 2.0, False)],
        "id int, prediction double, bargain boolean",
    )
    assert_approx_df_equality(
        price_pipeline(sales, listings), expected, precision=1e-8, ignore_nullable=True
    )


def test_segment_pipeline(spark):
    customers = spark.createDataFrame(
        [(1, 10.0, 1.0), (2, 12.0, 2.0), (3, 11.0, 1.0), (4, 300.0, 20.0), (5, 320.0, 22.0)],
        "id int, spend double, visits double",
    )
    segments = segment_pipeline(customers, [[0.0, 0.0], [100.0, 10.0]])
    expected = spark.createDataFrame(
        [(1, 0), (2, 0), (3, 0), (4, 1), (5, 1)], "id int, cluster int"
    )
    assert_df_equality(segments, expected, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.parametrize("missing", ["area", "rooms"])
def test_price_pipeline_names_a_missing_column(spark, missing):
    from sparkml_jobs import InputError

    sales = spark.createDataFrame(
        [(50.0, 2.0, 3000.0)], "area double, rooms double, price double"
    ).drop(missing)
    with pytest.raises(InputError, match=f"unknown feature column.*{missing}"):
        price_pipeline(sales, sales)
