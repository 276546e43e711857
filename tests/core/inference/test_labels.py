import pytest

from msta_cli.core.errors import InputError
from msta_cli.core.inference.labels import load_labels, read_text_labels


def test_text_file_skips_blank_lines_and_comments(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("# my classes\nbrush hair\n\n  ride bike  \n#skip\nclimb\n")
    assert read_text_labels(path) == ["brush hair", "ride bike", "climb"]
    assert load_labels(str(path)).names == ("brush hair", "ride bike", "climb")


def test_a_byte_order_mark_is_not_part_of_the_first_line(tmp_path):
    """Windows Notepad starts UTF-8 files with one; it would make the first line a new class, or
    hide a leading comment."""
    path = tmp_path / "labels.txt"
    path.write_bytes("# my classes\r\nbrush hair\r\nclimb\r\n".encode("utf-8-sig"))
    assert read_text_labels(path) == ["brush hair", "climb"]
    path.write_bytes("brush hair\nclimb\n".encode("utf-8-sig"))
    assert read_text_labels(path) == ["brush hair", "climb"]


def test_duplicates_are_an_error_naming_every_line(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("run\njump\nrun\nswim\njump\nrun\n")
    with pytest.raises(InputError, match=r"labels.txt: duplicate class names: 'run' on lines 1, 3, 6; 'jump' on lines 2, 5"):
        load_labels(str(path))


def test_empty_and_binary_text_files_are_errors(tmp_path):
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(InputError, match="no class names"):
        load_labels(str(tmp_path / "empty.txt"))
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00run")
    with pytest.raises(InputError, match="not a UTF-8 text file"):
        load_labels(str(tmp_path / "binary.txt"))


def test_csv_file_folder_and_dataset_name(tmp_path):
    dataset = tmp_path / "data" / "hmdb51"
    dataset.mkdir(parents=True)
    (dataset / "labels.csv").write_text("id,name\n0,brush hair\n1,cartwheel\n")
    expected = ("brush hair", "cartwheel")
    assert load_labels(str(dataset / "labels.csv")).names == expected
    assert load_labels(str(dataset)).names == expected
    by_name = load_labels("hmdb51", data_root=tmp_path / "data")
    assert by_name.names == expected and by_name.source.endswith("hmdb51/labels.csv")


def test_unknown_name_lists_prepared_datasets_with_a_suggestion(tmp_path):
    (tmp_path / "data" / "ucf101").mkdir(parents=True)
    (tmp_path / "data" / "ucf101" / "labels.csv").write_text("id,name\n0,archery\n")
    with pytest.raises(InputError, match=r"no such file.*Prepared datasets in .*: ucf101\. Did you mean 'ucf101'\?"):
        load_labels("ucf10", data_root=tmp_path / "data")


def test_folder_without_labels_csv_is_an_error(tmp_path):
    with pytest.raises(InputError, match="folder has no labels.csv"):
        load_labels(str(tmp_path))
