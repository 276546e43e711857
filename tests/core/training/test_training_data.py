"""The training lists: a seeded per-class hold-out for best-on-val."""

import pandas as pd

from msta_cli.core.training.training_data import hold_out


def test_hold_out_is_per_class_seeded_and_disjoint():
    split = pd.DataFrame({"path": [f"v{i}" for i in range(20)], "label": [i % 4 for i in range(20)]})
    train, validation = hold_out(split, 0.2, seed=3)
    assert sorted(validation["label"].tolist()) == [0, 1, 2, 3]
    assert not set(train["path"]) & set(validation["path"]) and len(train) + len(validation) == 20
    assert validation.equals(hold_out(split, 0.2, seed=3)[1])


def test_a_repeated_training_video_is_held_out_whole_and_once():
    paths = [f"v{i}" for i in range(8)]
    split = pd.DataFrame({"path": paths + paths[:4] * 2, "label": [0] * 16})  # v0..v3 weighted 3x
    train, validation = hold_out(split, 0.5, seed=0)
    assert validation["path"].is_unique and len(validation) == 4
    assert not set(train["path"]) & set(validation["path"])
    assert len(train) + sum((split["path"] == path).sum() for path in validation["path"]) == 16
