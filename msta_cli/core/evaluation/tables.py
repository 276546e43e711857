"""Protocol tables (DATASETS.md "Protocols") from per-run result rows.

Rows carry: method, run (seed/K label or ""), split, top1, top5, mean_class, videos, scored,
failed, trainable, total, selection.
"""

from __future__ import annotations

import pandas as pd

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
    `failed` counts a row's own videos that could not be scored: its seed's, or all of them."""
    rows = []
    for method, of_method in results.groupby("method", sort=False):
        wide = of_method.pivot_table(index="run", columns="split", values="top1", sort=False)
        for run, scores in wide.iterrows():
            rows.append(_hm_row(method, run or "-", scores["base"], scores["novel"], of_method[of_method["run"] == run]))
        if len(wide) > 1:
            rows.append(_hm_row(method, "mean", wide["base"].mean(), wide["novel"].mean(), of_method))
    return pd.DataFrame(rows)


def _hm_row(method: str, run: str, base: float, novel: float, rows: pd.DataFrame) -> dict:
    return {
        "method": method, "run": run, "base": round(base, 2), "novel": round(novel, 2),
        "HM": round(harmonic_mean(base, novel), 2), "failed": int(rows["failed"].sum()),
        "selection": rows["selection"].iloc[0],
    }


def few_shot_table(results: pd.DataFrame) -> pd.DataFrame:
    """Top-1 per K (columns), one row per method, with its model selection."""
    table = results.pivot_table(index="method", columns="run", values="top1", sort=False).round(2)
    return _with_selection(table.reset_index().rename_axis(columns=None), results)


def zero_shot_table(results: pd.DataFrame) -> pd.DataFrame:
    """Top-1 per target split and mean +- std over splits, with each method's model selection."""
    table = results.pivot_table(index="method", columns="split", values="top1", sort=False)
    summary = table.copy().round(2)
    summary["mean"] = table.mean(axis=1).round(2)
    summary["std"] = table.std(axis=1, ddof=0).round(2)
    return _with_selection(summary.reset_index().rename_axis(columns=None), results)


def supervised_table(results: pd.DataFrame) -> pd.DataFrame:
    columns = ["method", "run", "split", "top1", "top5", "mean_class", "videos", "failed", "selection"]
    return results[[c for c in columns if c in results.columns]].reset_index(drop=True)


def _with_selection(table: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """Add the `selection` column (a best-on-test run is labelled optimistic on every output)."""
    selection = results.drop_duplicates("method").set_index("method")["selection"]
    return table.assign(selection=table["method"].map(selection))
