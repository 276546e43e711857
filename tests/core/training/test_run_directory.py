import pandas as pd

from msta_cli.core.training.run_directory import ProblemsLog


def test_problems_log_keeps_one_row_per_failure_at_its_first_epoch_across_sessions(tmp_path):
    path = tmp_path / "problems.csv"
    first = ProblemsLog(path)
    rank0, rank1 = [("b.mp4", "file not found", 1)], [("a.mp4", "damaged", 2), ("b.mp4", "file not found", 0)]
    first.add(failure for rank in (rank0, rank1) for failure in rank)
    first.write()

    resumed = ProblemsLog(path)  # a --resume reads the rows written before it
    resumed.add([("a.mp4", "damaged", 3), ("a.mp4", "empty file (0 bytes)", 3)])
    resumed.write()
    assert pd.read_csv(path).values.tolist() == [
        ["a.mp4", "damaged", 2], ["a.mp4", "empty file (0 bytes)", 3], ["b.mp4", "file not found", 0],
    ]
    assert resumed.failures() == [("a.mp4", "damaged"), ("a.mp4", "empty file (0 bytes)"), ("b.mp4", "file not found")]


def test_problems_log_writes_a_header_when_nothing_failed(tmp_path):
    ProblemsLog(tmp_path / "problems.csv").write()
    assert (tmp_path / "problems.csv").read_text().strip() == "path,reason,epoch"
