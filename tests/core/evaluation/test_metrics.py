import numpy as np
import pandas as pd
import pytest

from msta_cli.core.evaluation.metrics import SetScores, harmonic_mean
from msta_cli.core.evaluation.tables import OPTIMISTIC, base_to_novel_table, few_shot_table, protocol_table, zero_shot_table


def _scores() -> SetScores:
    probabilities = np.array([
        [0.7, 0.2, 0.1],  # label 0, right
        [0.5, 0.4, 0.1],  # label 1, wrong (second)
        [0.1, 0.1, 0.8],  # label 2, right
        [0.6, 0.3, 0.1],  # label 2, wrong (third)
    ])
    return SetScores("test", ["a", "b", "c"], ["v0", "v1", "v2", "v3"], np.array([0, 1, 2, 2]), probabilities, [("v4", "empty file", 1)])


def test_top_k_and_mean_class_accuracy():
    scores = _scores()
    assert scores.top_k(1) == 50.0
    assert scores.top_k(2) == 75.0
    assert scores.top_k(5) == 100.0  # k is capped at the number of classes
    assert scores.mean_class_accuracy() == pytest.approx((100 + 0 + 50) / 3)


def test_a_tie_ranks_the_predicted_class_first_in_every_table():
    """Exact ties (bf16, one view) with many classes: an unstable sort ranked the other class first."""
    classes = 400
    probabilities = np.full((20, classes), 0.1 / (classes - 2))
    probabilities[:, 5] = probabilities[:, 397] = 0.45
    scores = SetScores("test", [f"c{i}" for i in range(classes)], [f"v{i}" for i in range(20)], np.full(20, 5), probabilities, [])
    assert scores.top_k(1) == 100.0 and scores.per_class().loc[5, "correct"] == 20
    table = scores.predictions_table()
    assert (table["top1"] == "c5").all() and table["correct"].all()


def test_a_class_none_of_whose_videos_could_be_scored_is_named_not_averaged_silently():
    """Both videos of class b failed: the mean over classes covers a and c only, and says so."""
    scores = SetScores("test", ["a", "b", "c"], ["v0", "v1"], np.array([0, 2]), np.eye(3)[[0, 2]], [("v2", "empty file", 1), ("v3", "gone", 1)])
    assert scores.mean_class_accuracy() == 100.0
    assert scores.unscored_classes() == ["b"]
    assert scores.per_class().loc[1, ["videos", "scored", "failed"]].tolist() == [2, 0, 2]
    assert np.isnan(scores.per_class().loc[1, "accuracy"])
    assert _scores().unscored_classes() == []


def test_summary_counts_failed_videos_once():
    summary = _scores().summary()
    assert (summary["videos"], summary["scored"], summary["failed"]) == (5, 4, 1)


def test_top5_is_not_reported_for_five_classes_or_fewer():
    """Every video is in its top 5 then: 100% would read as a result."""
    assert np.isnan(_scores().summary()["top5"])
    six = SetScores("test", list("abcdef"), ["v0", "v1"], np.array([0, 5]), np.eye(6)[[1, 0]], [])
    assert six.summary()["top5"] == 50.0


def test_confusion_per_class_and_predictions_table():
    scores = _scores()
    confusion = scores.confusion()
    assert confusion.loc["c", "a"] == 1 and confusion.loc["c", "c"] == 1 and confusion.to_numpy().sum() == 4
    per_class = scores.per_class()
    assert per_class["correct"].tolist() == [1, 0, 1]
    # v4 of class b failed: listed, not scored
    assert per_class[["videos", "scored", "failed"]].values.tolist() == [[1, 1, 0], [2, 1, 1], [2, 2, 0]]
    table = scores.predictions_table(k=2)
    assert table.loc[1, "top1"] == "a" and table.loc[1, "score2"] == pytest.approx(0.4)
    assert table.loc[4, "path"] == "v4" and table.loc[4, "error"] == "empty file"
    # a failed video keeps its true class, and the label column stays integer
    assert (table.loc[4, "label"], table.loc[4, "label_name"]) == (1, "b") and table["label"].dtype == "int64"


def _rows(method, run, base, novel):
    common = {"method": method, "run": run, "failed": 0, "selection": "last"}
    return [{**common, "split": "base", "top1": base}, {**common, "split": "novel", "top1": novel}]


def test_base_to_novel_mean_row_is_hm_of_averages():
    results = pd.DataFrame(_rows("MSTA", "seed1", 80.0, 50.0) + _rows("MSTA", "seed2", 70.0, 60.0) + _rows("zero-shot", "", 50.0, 45.0))
    table = base_to_novel_table(results).set_index(["method", "run"])
    assert table.loc[("MSTA", "mean"), "base"] == 75.0 and table.loc[("MSTA", "mean"), "novel"] == 55.0
    assert table.loc[("MSTA", "mean"), "HM"] == round(harmonic_mean(75.0, 55.0), 2)
    assert table.loc[("MSTA", "seed1"), "HM"] == round(2 * 80 * 50 / 130, 2)
    assert table.loc[("zero-shot", "-"), "HM"] == round(harmonic_mean(50, 45), 2)


def test_a_base_to_novel_evaluation_of_one_set_gets_a_row_per_set():
    """`msta evaluate --split base` on a base-to-novel run: no harmonic mean to take."""
    row = {"method": "MSTA", "run": "seed1", "split": "base", "top1": 80.0, "top5": 95.0, "mean_class": 79.0,
           "videos": 10, "failed": 0, "selection": "last"}
    table = protocol_table("base2novel", pd.DataFrame([row]))
    assert table[["split", "top1"]].values.tolist() == [["base", 80.0]]


def _row(method: str, run: str, split: str, top1: float, failed: int = 0) -> dict:
    return {"method": method, "run": run, "split": split, "top1": top1, "failed": failed, "selection": "last"}


def test_the_few_shot_table_has_a_column_per_k_and_one_for_the_frozen_backbone():
    rows = [_row("zero-shot", "", "test", 40.0, failed=1)] + [_row("MSTA", f"k{k}", "test", float(k), failed=1) for k in (2, 4)]
    table = few_shot_table(pd.DataFrame(rows)).set_index("method")
    assert table.columns.tolist() == ["zero-shot", "k2", "k4", "failed", "selection"]
    assert table.loc["zero-shot", "zero-shot"] == 40.0 and np.isnan(table.loc["MSTA", "zero-shot"])
    assert table.loc["MSTA", ["k2", "k4", "failed"]].tolist() == [2.0, 4.0, 2]


def test_a_checkpoint_without_a_k_gets_its_methods_column_not_the_frozen_backbones():
    """`msta evaluate RUN/k2/checkpoints/last` names no K."""
    rows = [_row("zero-shot", "", "test", 40.0), _row("MSTA", "", "test", 55.0)]
    table = few_shot_table(pd.DataFrame(rows)).set_index("method")
    assert table.loc["MSTA", "MSTA"] == 55.0 and np.isnan(table.loc["MSTA", "zero-shot"])


def test_the_few_shot_table_keeps_several_test_sets_apart():
    rows = [_row("MSTA", "k2", split, top1) for split, top1 in (("a", 62.0), ("b", 72.0), ("c", 82.0))]
    assert few_shot_table(pd.DataFrame(rows)).iloc[0][["a k2", "b k2", "c k2"]].tolist() == [62.0, 72.0, 82.0]


def test_the_zero_shot_table_reports_each_target_dataset_over_its_own_splits():
    values = {"hmdb51": (51.0, 52.0, 53.0), "ucf101": (81.0, 82.0, 83.0), "k600": (71.0, 72.0, 73.0)}
    rows = [_row("MSTA", "", f"{target}-{n}", v, failed=n) for target, splits in values.items() for n, v in enumerate(splits, 1)]
    table = zero_shot_table(pd.DataFrame(rows)).set_index("target")
    assert table.columns.tolist() == ["method", "split 1", "split 2", "split 3", "mean", "std", "failed", "selection"]
    assert table["mean"].to_dict() == {"hmdb51": 52.0, "ucf101": 82.0, "k600": 72.0}
    assert table["std"].tolist() == [round(np.std([51, 52, 53]), 2)] * 3 and table["failed"].tolist() == [6, 6, 6]


def test_a_set_no_video_of_which_could_be_scored_stays_in_every_table_without_an_accuracy():
    failed = float("nan")
    base_to_novel = base_to_novel_table(pd.DataFrame(
        [_row("MSTA", "seed1", "base", 80.0), _row("MSTA", "seed1", "novel", failed, failed=9),
         _row("MSTA", "seed2", "base", 70.0), _row("MSTA", "seed2", "novel", 60.0)]
    )).set_index("run")
    assert np.isnan(base_to_novel.loc["seed1", "HM"]) and base_to_novel.loc["seed2", "HM"] == round(2 * 70 * 60 / 130, 2)
    assert np.isnan(base_to_novel.loc["mean", "novel"]) and np.isnan(base_to_novel.loc["mean", "HM"])
    assert base_to_novel.loc["mean", "base"] == 75.0 and base_to_novel.loc["mean", "failed"] == 9
    few_shot = few_shot_table(pd.DataFrame([_row("MSTA", "k2", "test", 50.0), _row("MSTA", "k4", "test", failed, failed=5)]))
    assert few_shot.columns.tolist()[1:3] == ["k2", "k4"] and np.isnan(few_shot.loc[0, "k4"])
    zero_shot = zero_shot_table(pd.DataFrame([_row("MSTA", "", "hmdb51-1", 50.0), _row("MSTA", "", "hmdb51-2", failed)]))
    assert np.isnan(zero_shot.loc[0, "mean"]) and np.isnan(zero_shot.loc[0, "std"])


def test_optimistic_protocol_is_named_as_such():
    assert "optimistic" in OPTIMISTIC and "test set" in OPTIMISTIC


def test_base_to_novel_rows_count_their_own_seeds_failures():
    results = pd.DataFrame(_rows("MSTA", "seed1", 80.0, 50.0) + _rows("MSTA", "seed2", 70.0, 60.0))
    results.loc[(results["run"] == "seed1") & (results["split"] == "base"), "failed"] = 2
    results.loc[(results["run"] == "seed1") & (results["split"] == "novel"), "failed"] = 1
    table = base_to_novel_table(results).set_index("run")
    assert table["failed"].to_dict() == {"seed1": 3, "seed2": 0, "mean": 3}


@pytest.mark.parametrize("kind", ["fewshot", "zeroshot", "supervised", "single", "base2novel"])
def test_every_protocol_table_labels_a_best_on_test_run_optimistic(kind):
    rows = [{**row, "top5": 90.0, "mean_class": 70.0, "videos": 10, "failed": 0} for row in _rows("MSTA", "k16", 80.0, 50.0)]
    zero_shot = [{**row, "method": "zero-shot", "run": "", "selection": "-"} for row in rows]
    results = pd.DataFrame(zero_shot + [{**row, "selection": OPTIMISTIC} for row in rows])
    table = protocol_table(kind, results)
    assert table.loc[table["method"] == "MSTA", "selection"].unique().tolist() == [OPTIMISTIC]
    assert table.loc[table["method"] == "zero-shot", "selection"].unique().tolist() == ["-"]
