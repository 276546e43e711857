import pandas as pd
import pytest

from msta_cli.core.config import Config
from msta_cli.core.errors import InputError
from msta_cli.core.training.run_directory import MetricsLog, ProblemsLog, new_run_directory


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


def _named(output_dir) -> Config:
    config = Config()
    config.output_dir = str(output_dir)
    return config


def test_an_output_dir_that_is_a_file_or_under_one_is_refused_before_any_work(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(InputError, match=rf"output_dir {blocker}: is a file, not a folder"):
        new_run_directory(_named(blocker))
    with pytest.raises(InputError, match=rf"output_dir {blocker / 'run'}: {blocker} is a file, not a folder"):
        new_run_directory(_named(blocker / "run"))


def test_an_existing_folder_is_a_run_to_resume_only_when_it_is_one(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="not empty and not a run; choose an empty or new output_dir"):
        new_run_directory(_named(tmp_path / "notes"))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("")
    with pytest.raises(InputError, match=rf"a run already exists here; resume it with --resume {tmp_path / 'run'}"):
        new_run_directory(_named(tmp_path / "run"))
    assert new_run_directory(_named(tmp_path / "new")) == tmp_path / "new"



def test_a_metrics_row_a_kill_cut_short_is_dropped_on_resume(tmp_path):
    log = MetricsLog(tmp_path / "metrics.csv")
    for step in (1, 2, 3):
        log.append(kind="step", epoch=0, step=step, loss=1.25, lr=0.001, clips_per_s=40.5)
    text = (tmp_path / "metrics.csv").read_text()
    (tmp_path / "metrics.csv").write_text(text[:-6])  # the third row lost "40.5" and its line end
    log.truncate_after(10)
    rows = pd.read_csv(tmp_path / "metrics.csv")
    assert rows["step"].tolist() == [1, 2] and rows["clips_per_s"].tolist() == [40.5, 40.5]
