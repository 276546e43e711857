"""Protocol tables (DATASETS.md "Protocols") from per-run result rows.

Rows carry: method, run (seed/K label or ""), split, top1, top5, mean_class, videos, scored,
failed, views, gflops_per_view, trainable, total, selection.
"""

from __future__ import annotations

import pandas as pd

from msta_cli.core.config_checks import zero_shot_split
from msta_cli.core.evaluation.metrics import harmonic_mean

OPTIMISTIC = "best-on-test (optimistic: epoch chosen on the test set, as the peers did)"


def protocol_table(kind: str, results: pd.DataFrame) -> pd.DataFrame:
    """The protocol's table; one row per set when a base-to-novel evaluation has only one of its
    two sets (`msta evaluate --split base`), since there is no harmonic mean to report."""
    if kind == "base2novel" and not {"base", "novel"} <= set(results["split"]):
        kind = "supervised"
    builders = {"base2novel": base_to_novel_table, "fewshot": few_shot_table, "zeroshot": zero_shot_table}
    return builders.get(kind, supervised_table)(results)


def base_to_novel_table(results: pd.DataFrame) -> pd.DataFrame:
    """Base, novel and HM per seed; the mean row averages base and novel first, then takes HM.
    `failed` counts a row's own videos that could not be scored: its seed's, or all of them. A set
    no video of which could be scored has no accuracy: its row, and the mean, show none."""
    rows = []
    for method, of_method in results.groupby("method", sort=False):
        wide = _top1(of_method, "run", "split").reindex(columns=["base", "novel"])
        for run, scores in wide.iterrows():
            rows.append(_hm_row(method, run or "-", scores["base"], scores["novel"], of_method[of_method["run"] == run]))
        if len(wide) > 1:
            rows.append(_hm_row(method, "mean", wide["base"].mean(skipna=False), wide["novel"].mean(skipna=False), of_method))
    return pd.DataFrame(rows)


def _hm_row(method: str, run: str, base: float, novel: float, rows: pd.DataFrame) -> dict:
    return {
        "method": method, "run": run, "base": round(base, 2), "novel": round(novel, 2),
        "HM": round(harmonic_mean(base, novel), 2), "failed": int(rows["failed"].sum()),
        "selection": rows["selection"].iloc[0],
    }


def few_shot_table(results: pd.DataFrame) -> pd.DataFrame:
    """Top-1 per K (columns; a model without a K, such as the frozen backbone or one checkpoint
    given to `msta evaluate`, under its method's name), one row per method, with its failed
    videos and model selection. With several test sets a column is `SET kK`."""
    several = results["split"].nunique() > 1
    column = [
        " ".join(part for part in (split if several else "", run or method) if part)
        for split, run, method in zip(results["split"], results["run"], results["method"])
    ]
    table = _top1(results.assign(column=column), "method", "column").round(2)
    return _with_failed_and_selection(table.reset_index().rename_axis(columns=None), results)


def zero_shot_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per method and target dataset: top-1 per split, mean and population std over the
    splits. Sets named DATASET-N are splits of DATASET (recipes/zeroshot.yaml: hmdb51-1 ...);
    a split no video of which could be scored leaves its mean and std empty."""
    targets, numbers = zip(*map(zero_shot_split, results["split"]))
    split_columns = [f"split {number}" for number in numbers]
    rows = []
    for (method, target), of_target in results.assign(target=targets, column=split_columns).groupby(
        ["method", "target"], sort=False
    ):
        scores = _top1(of_target, "target", "column").iloc[0]
        rows.append({
            "method": method, "target": target, **scores.round(2).to_dict(),
            "mean": round(scores.mean(skipna=False), 2), "std": round(scores.std(ddof=0, skipna=False), 2),
            "failed": int(of_target["failed"].sum()), "selection": of_target["selection"].iloc[0],
        })
    table = pd.DataFrame(rows)
    splits = sorted(set(split_columns), key=lambda name: int(name.split()[1]))
    return table[["method", "target", *splits, "mean", "std", "failed", "selection"]]


def supervised_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per set, with the cost DATASETS.md asks fully supervised results to report beside
    top-1/top-5: views, GFLOPs per view and trainable parameters."""
    columns = [
        "method", "run", "split", "top1", "top5", "mean_class", "videos", "failed",
        "views", "gflops_per_view", "trainable", "selection",
    ]
    return results[[c for c in columns if c in results.columns]].reset_index(drop=True)


def _top1(rows: pd.DataFrame, index: str, columns: str) -> pd.DataFrame:
    """top1 with one row per `index` value and one column per `columns` value, in the order they
    first appear; a set no video of which could be scored stays, as NaN (pivot_table drops it)."""
    wide = rows.groupby([index, columns], sort=False)["top1"].mean().unstack(columns)
    return wide.reindex(index=pd.unique(rows[index]), columns=pd.unique(rows[columns]))


def _with_failed_and_selection(table: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """Add each method's failed videos and its `selection` (a best-on-test run is labelled
    optimistic on every output)."""
    by_method = results.groupby("method", sort=False)
    return table.assign(
        failed=table["method"].map(by_method["failed"].sum()).astype(int),
        selection=table["method"].map(by_method["selection"].first()),
    )
