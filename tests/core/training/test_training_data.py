"""The training lists: a seeded per-class hold-out for best-on-val."""

import pandas as pd

from msta_cli.core.training.training_data import hold_out


def test_hold_out_is_per_class_seeded_and_disjoint():
    split = pd.DataFrame({"path": [f"v{i}" for i in range(20)], "label": [i % 4 for i in range(20)]})
    train, validation = hold_out(split, 0.2, seed=3)
    assert sorted(validation["label"].tolist()) == [0, 1, 2, 3]
    assert not set(train["path"]) & set(validation["path"]) and len(train) + len(validation) == 20
    assert validation.equals(hold_out(split, 0.2, seed=3)[1])
