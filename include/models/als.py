"""Fitting ALS (Spark MLlib) the way every Setlist job does: explicit, explicit with biases, or implicit.

Reads and writes nothing: frames in, a fitted ``ALSModel`` out. ``train_als`` fits the nightly model with
it and ``evaluate`` fits candidates on a training split, so both fit exactly the same model for the same
parameters.

Biases mode (explicit only) fits the global mean, item biases and user biases first (each shrunk towards
zero by a damping count), then ALS on what they leave. The biases are folded into the factors
(user ``[x, 1, mean + b_u]``, track ``[y, b_i, 1]``), so the saved model's dot product is the whole
prediction and ``recommend``, SQL users and Spark's own ``transform`` need nothing else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar, get_args

from pyspark import inheritable_thread_target
from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from include.core.config import AlsSetting, Settings
from include.core.schemas import TRACK_KEY, USER_KEY
from include.lake.jobs import FitError as FitError  # raised by fit; every job reports it in one line
from include.lake.spark import cached

USER, TRACK, RATING = USER_KEY, TRACK_KEY, "rating"
BIAS_DAMPING = 5.0  # ratings' worth of pull towards the mean for a user or track with few ratings


@dataclass(frozen=True)
class AlsParams:
    """Everything that decides a fitted model; its JSON form is recorded with every model and run."""

    mode: str = "implicit"
    rank: int = 20
    max_iter: int = 10
    reg_param: float = 0.1
    alpha: float = 10.0
    biases: bool = False
    damping: float = BIAS_DAMPING  # biases mode: ratings' worth of pull towards the mean
    nonnegative: bool = False  # signed factors: needed for residuals, and they ranked better in implicit mode
    seed: int = 42

    @classmethod
    def of(cls, settings: Settings, tuned: AlsParams | None = None) -> AlsParams:
        """The settings' parameters. Model settings left unset are ``tuned``'s (a tuning run's of the same mode:
        the rest of them too, so a tuning run that kept the baseline configuration gives it whole), else the
        mode's best known values."""
        if tuned is not None and tuned.mode == settings.als_mode:
            given = {
                name: settings.als_value(name) for name in get_args(AlsSetting) if getattr(settings, name) is not None
            }
            if "rank" in given or "max_iter" in given:
                given.update(
                    rank=int(given.get("rank", tuned.rank)), max_iter=int(given.get("max_iter", tuned.max_iter))
                )
            return tuned.replace(seed=settings.seed, **given)
        return cls(
            mode=settings.als_mode,
            rank=int(settings.als_value("rank")),
            max_iter=int(settings.als_value("max_iter")),
            reg_param=settings.als_value("reg_param"),
            alpha=settings.als_value("alpha"),
            biases=settings.als_biases and settings.als_mode == "explicit",
            seed=settings.seed,
        )

    @classmethod
    def from_json(cls, text: str) -> AlsParams:
        """Parameters as :meth:`to_json` recorded them (fields recorded before a field existed keep its default)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in json.loads(text).items() if k in known})

    def as_dict(self) -> dict[str, Any]:
        """The parameters that apply to the mode (alpha only for implicit, biases and their damping only for
        explicit, damping only with biases)."""
        d: dict[str, Any] = dataclasses.asdict(self)
        d.pop("alpha" if self.mode == "explicit" else "biases")
        if not self.biases:
            d.pop("damping")
        return d

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)

    def digest(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:8]

    def replace(self, **changes: Any) -> AlsParams:
        return dataclasses.replace(self, **changes)


SINGULAR = "SingularMatrixException"  # the Java class Spark's Cholesky solver throws

# The student project's configuration: what every tuned model must beat on the same split.
BASELINE = AlsParams(mode="explicit", rank=20, max_iter=10, reg_param=0.1, biases=False, nonnegative=True)


def estimator(params: AlsParams, blocks: int, checkpoint_interval: int = 5) -> ALS:
    """Spark's blocked ALS; ``blocks`` user and item blocks (Spark's default of 10 only adds overhead on few cores).

    Only the baseline configuration is nonnegative (BENCHMARKS.md compares).
    """
    implicit = params.mode == "implicit"
    return ALS(
        numUserBlocks=blocks,
        numItemBlocks=blocks,
        userCol=USER,
        itemCol=TRACK,
        ratingCol=RATING,
        rank=params.rank,
        maxIter=params.max_iter,
        regParam=params.reg_param,
        implicitPrefs=implicit,
        alpha=params.alpha if implicit else 1.0,
        nonnegative=params.nonnegative,
        coldStartStrategy="drop",
        seed=params.seed,
        checkpointInterval=checkpoint_interval,
    )


def biases(ratings: DataFrame, damping: float = BIAS_DAMPING) -> tuple[float, DataFrame, DataFrame]:
    """The mean rating, then damped item biases, then damped user biases of what the item biases leave."""
    mean = float(ratings.agg(F.avg(RATING)).first()[0])  # type: ignore[index]
    item = ratings.groupBy(TRACK).agg((F.sum(F.col(RATING) - mean) / (F.count("*") + damping)).alias("b_i"))
    user = (
        ratings.join(item, TRACK)
        .groupBy(USER)
        .agg((F.sum(F.col(RATING) - mean - F.col("b_i")) / (F.count("*") + damping)).alias("b_u"))
    )
    return mean, user, item


def residuals(ratings: DataFrame, user: DataFrame, item: DataFrame, mean: float) -> DataFrame:
    """What ALS learns in biases mode: each rating minus the mean and its user and item biases."""
    return (
        ratings.join(item, TRACK)
        .join(user, USER)
        .select(USER, TRACK, (F.col(RATING) - mean - F.col("b_i") - F.col("b_u")).cast("float").alias(RATING))
    )


def _folded(factors: DataFrame, bias: DataFrame, key: str, extra: list[Column]) -> DataFrame:
    """Factors with ``extra`` values appended; an id without a bias (none is expected) gets 0."""
    joined = factors.join(bias.withColumnRenamed(key, "id"), "id", "left").fillna(0.0)
    return joined.select("id", F.concat("features", F.array(*[c.cast("float") for c in extra])).alias("features"))


@dataclass(frozen=True)
class Factors:
    """A fitted model as its factor tables, ``(id int, features array<float>)`` per user and per track: the
    score of a pair is the dot product of its two vectors. ``fitted`` is what ``ALS.fit`` returned; with
    biases the factors here carry them too (rank + 2) and :meth:`save` writes them in its place."""

    users: DataFrame
    items: DataFrame
    rank: int
    fitted: ALSModel

    @classmethod
    def of(cls, model: ALSModel) -> Factors:
        return cls(model.userFactors, model.itemFactors, model.rank, model)

    def predict(self, pairs: DataFrame) -> DataFrame:
        """``pairs`` (user_key, track_key, ...) with ``prediction`` (float, like Spark's ``transform``); pairs
        whose user or track has no factors are dropped (cold-start ``drop``)."""
        users = self.users.select(F.col("id").alias(USER), F.col("features").alias("_u"))
        items = self.items.select(F.col("id").alias(TRACK), F.col("features").alias("_i"))
        dot = F.aggregate(F.zip_with("_u", "_i", lambda a, b: a * b), F.lit(0.0), lambda acc, x: acc + x)
        return pairs.join(users, USER).join(items, TRACK).withColumn("prediction", dot.cast("float")).drop("_u", "_i")

    def save(self, path: str) -> None:
        """Spark ML's own model format, readable by ``ALSModel.load``: the fitted model, and with biases the
        folded factors and rank written over its factors and rank."""
        self.fitted.write().overwrite().save(path)
        if self.rank == self.fitted.rank:
            return
        spark = self.users.sparkSession
        self.users.write.mode("overwrite").parquet(f"{path}/userFactors")
        self.items.write.mode("overwrite").parquet(f"{path}/itemFactors")
        metadata = spark.read.text(f"{path}/metadata").first()
        assert metadata is not None
        fields = json.loads(metadata[0])
        fields["rank"] = self.rank
        spark.createDataFrame([(json.dumps(fields),)], "value string").coalesce(1).write.mode("overwrite").text(
            f"{path}/metadata"
        )

    @classmethod
    def load(cls, path: str) -> Factors:
        return cls.of(ALSModel.load(path))


def with_biases(model: ALSModel, mean: float, user: DataFrame, item: DataFrame) -> Factors:
    """Factors of rank + 2 whose dot product is ``mean + b_u + b_i + x . y``."""
    users = _folded(model.userFactors, user, USER, [F.lit(1.0), F.lit(mean) + F.col("b_u")])
    items = _folded(model.itemFactors, item, TRACK, [F.col("b_i"), F.lit(1.0)])
    return Factors(users, items, model.rank + 2, model)


Fitter = Callable[[DataFrame, AlsParams], Factors]


T = TypeVar("T")
R = TypeVar("R")


def side_by_side(work: Callable[[T], R], items: Sequence[T], workers: int, deadline: float = math.inf) -> list[R]:
    """``work`` of each item in threads that share the caller's Spark session, at most ``workers`` at a time;
    the results in the items' order. An item starts only before ``deadline`` (``time.monotonic()``; the first
    always starts), so the list ends at the first item that did not start."""
    # Spark ML over Connect looks the session up per thread: pyspark's wrapper makes it the thread's too
    work = inheritable_thread_target(SparkSession.active())(work)
    futures: list[Future[R]] = []
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="setlist-fit") as pool:
        running: set[Future[R]] = set()
        for item in items:
            if len(running) >= max(1, workers):
                _, running = wait(running, return_when=FIRST_COMPLETED)
            if futures and time.monotonic() >= deadline:
                break
            futures.append(pool.submit(work, item))
            running.add(futures[-1])
    return [f.result() for f in futures]


SMALL_FITS_AT_ONCE = 3


def fits_at_once(settings: Settings, rows: int) -> int:
    """How many fits an evaluation runs side by side on ``rows`` training rows: ``settings.als_fits_at_once``,
    else :data:`SMALL_FITS_AT_ONCE` on a small input (fewer rows than ``codegen_min_rows``) and one on a larger
    one. A small fit mostly waits on the scheduling of its many short stages (BENCHMARKS.md); a large one
    keeps every core busy on its own and needs the memory."""
    if settings.als_fits_at_once:
        return settings.als_fits_at_once
    return SMALL_FITS_AT_ONCE if rows < settings.codegen_min_rows else 1


def fitter(settings: Settings, spark: SparkSession) -> Fitter:
    """``fit`` with the settings' blocks (default: one per core of the cluster) and checkpoint interval."""
    from include.lake.spark import parallelism

    blocks = settings.als_blocks or parallelism(spark)
    return lambda data, params: fit(data, params, blocks, settings.checkpoint_interval)


def fit(data: DataFrame, params: AlsParams, blocks: int, checkpoint_interval: int = 5) -> Factors:
    """Fit ``params`` on ``(user_key, track_key, rating)`` rows.

    Raises :class:`FitError` when Spark's Cholesky solver meets a singular system. Spark regularizes a user's
    (or track's) system by regParam times its number of positive ratings, so in implicit mode one with none has
    no regularization at all, and its system is singular when fewer vectors than ``rank`` span it: a rank
    above the number of tracks (or users) on a tiny input, or an input with hardly any positive ratings.
    """
    try:
        if not params.biases:
            return Factors.of(estimator(params, blocks, checkpoint_interval).fit(data))
        mean, user, item = biases(data, params.damping)
        user, item = cached(user), cached(item)
        model = estimator(params, blocks, checkpoint_interval).fit(residuals(data, user, item, mean))
        return with_biases(model, mean, user, item)
    except Exception as exc:  # classic Spark raises Py4JJavaError, Spark Connect a SparkException: both name it
        if SINGULAR not in str(exc):
            raise
        raise FitError(
            f"{params.mode} ALS with rank {params.rank} and regParam {params.reg_param} met a singular system"
            " (Spark's SingularMatrixException): too few users, tracks or positive ratings for that rank"
        ) from None
