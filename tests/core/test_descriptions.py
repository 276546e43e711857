import json

import pytest

from msta_cli.core.config import DescriptionsConfig
from msta_cli.core.descriptions import (
    descriptions_for,
    load_descriptions,
    read_indexed_descriptions,
    read_msta_descriptions,
)
from msta_cli.core.errors import InputError

LABELS = ["brush hair", "cartwheel", "catch"]


def _write(path, data) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def test_authors_index_keyed_pair_resolves_through_the_label_list(tmp_path):
    spatial = _write(tmp_path / "2_s_description_hmdb.json", {str(i): [f"A video about {n}.", f"{n} seen"] for i, n in enumerate(LABELS)})
    temporal = _write(tmp_path / "2_t_description_hmdb.json", {"2": ["catch step 1", "catch step 2"], "0": ["brush step", "comb"], "1": ["turn", "land"]})
    descriptions = read_indexed_descriptions(spatial, temporal, LABELS)
    assert descriptions["catch"].temporal == ("catch step 1", "catch step 2")
    assert descriptions["cartwheel"].spatial == ("A video about cartwheel.", "cartwheel seen")


def test_authors_pair_loads_from_config_with_labels_csv(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("id,name\n" + "".join(f"{i},{n}\n" for i, n in enumerate(LABELS)))
    both = {str(i): ["x", "y"] for i in range(3)}
    config = DescriptionsConfig(spatial=_write(tmp_path / "s.json", both), temporal=_write(tmp_path / "t.json", both), labels=str(labels))
    assert sorted(load_descriptions(config)) == sorted(LABELS)


def test_index_outside_label_list_is_an_error(tmp_path):
    bad = _write(tmp_path / "s.json", {"7": ["x"]})
    with pytest.raises(InputError, match="key '7' is not a class index of the 3-class label list"):
        read_indexed_descriptions(bad, bad, LABELS)


def test_msta_format_and_missing_classes_are_listed(tmp_path):
    path = _write(tmp_path / "d.json", {"catch": {"spatial": ["a ball in the air"], "temporal": ["hands close"]}})
    descriptions = read_msta_descriptions(path)
    spatial, temporal = descriptions_for(descriptions, ["catch"])
    assert spatial == [["a ball in the air"]] and temporal == [["hands close"]]
    with pytest.raises(InputError, match="no descriptions for 2 of 3 classes: brush hair, cartwheel"):
        descriptions_for(descriptions, LABELS)


def test_malformed_files_name_the_place(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"catch": \n  [oops]}')
    with pytest.raises(InputError, match=r"broken.json:2:4: invalid JSON"):
        read_msta_descriptions(broken)
    wrong = _write(tmp_path / "wrong.json", {"catch": ["only a list"]})
    with pytest.raises(InputError, match="class 'catch' must map to"):
        read_msta_descriptions(wrong)


def test_config_without_a_source_explains_the_choices():
    with pytest.raises(InputError, match="set either `file`"):
        load_descriptions(DescriptionsConfig())
