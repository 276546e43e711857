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
    with pytest.raises(InputError, match=r"key '7' is not a class index of the label list \(3 classes\)"):
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


def test_unreadable_files_name_the_file_and_what_to_do(tmp_path):
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes('{"café": {"spatial": ["x"], "temporal": ["y"]}}'.encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1.json: not UTF-8 text .* at byte 5\); save it as UTF-8"):
        read_msta_descriptions(latin1)
    with pytest.raises(InputError, match=r": is a folder; give the description file inside it"):
        read_msta_descriptions(tmp_path)


def _labels_csv(path, names) -> str:
    path.write_text("id,name\n" + "".join(f"{i},{n}\n" for i, n in enumerate(names)))
    return str(path)


def test_a_file_that_misses_classes_of_the_label_list_names_them_and_the_list(tmp_path):
    labels = _labels_csv(tmp_path / "labels.csv", LABELS)
    spatial = _write(tmp_path / "2_s_description_hmdb.json", {str(i): ["x", "y"] for i in range(3)})
    temporal = _write(tmp_path / "2_t_description_hmdb.json", {"0": ["x", "y"], "1": ["x", "y"]})
    config = DescriptionsConfig(spatial=spatial, temporal=temporal, labels=labels)
    with pytest.raises(InputError, match=r"2_t_description_hmdb.json: no sentences for 1 of the 3 classes of the label list "
                       r".*labels.csv: 2 \(catch\); loss.descriptions.labels must be the list this file indexes"):
        load_descriptions(config)


def test_base_files_with_the_novel_label_list_are_refused_although_the_counts_match(tmp_path):
    novel = _labels_csv(tmp_path / "novel_labels.csv", LABELS)
    both = {str(i): ["x", "y"] for i in range(3)}
    spatial = _write(tmp_path / "2_s_description_ssv2_base.json", both)
    temporal = _write(tmp_path / "2_t_description_ssv2_base.json", both)
    with pytest.raises(InputError, match=r"different base-to-novel splits: .*_s_description_ssv2_base.json \(base\), "
                       r".*novel_labels.csv \(novel\)"):
        load_descriptions(DescriptionsConfig(spatial=spatial, temporal=temporal, labels=novel))
    base = _labels_csv(tmp_path / "base_labels.csv", LABELS)
    assert sorted(load_descriptions(DescriptionsConfig(spatial=spatial, temporal=temporal, labels=base))) == sorted(LABELS)


def test_msta_file_and_authors_pair_together_is_an_error_not_a_silent_choice(tmp_path):
    msta_file = _write(tmp_path / "d.json", {"catch": {"spatial": ["x"], "temporal": ["y"]}})
    pair = _write(tmp_path / "s.json", {"0": ["x"]})
    with pytest.raises(InputError, match="both `file` and the authors' `spatial`/`temporal` pair are set; keep one"):
        load_descriptions(DescriptionsConfig(file=msta_file, spatial=pair, temporal=pair))


def test_a_missing_relative_file_says_where_relative_paths_are_read_from(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=r"^data/synthetic/descriptions.json: description file not found \(a relative path "
                       r"is read from the current folder, not from data.root\)"):
        read_msta_descriptions("data/synthetic/descriptions.json")
    with pytest.raises(InputError, match=r"descriptions.json: description file not found; point loss.descriptions at your files, "
                       r"or train without the consistency loss: loss.consistency_weight=0$"):
        read_msta_descriptions(tmp_path / "descriptions.json")
