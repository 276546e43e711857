import json
import os
import stat

import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from msta_cli.core.data.sampling import ClipSampling
from msta_cli.core.errors import InputError
from msta_cli.core.inference.classes import embed_classes
from msta_cli.core.inference.merged import METADATA_KEY, load_merged, save_merged
from tests.core.inference.helpers import SAMPLING, tiny_adapted_model


@pytest.fixture
def merged(tmp_path, tiny_backbone_name):
    model = tiny_adapted_model(tiny_backbone_name)
    path = tmp_path / "m.safetensors"
    save_merged(model, path, SAMPLING, embed_classes(model, ["run", "jump"]))
    return path


def _rewrite(path, change_tensors=lambda t: None, change_metadata=lambda m: None) -> None:
    with safe_open(str(path), framework="pt") as handle:
        metadata = json.loads(handle.metadata()[METADATA_KEY])
    tensors = load_file(path)
    change_tensors(tensors)
    change_metadata(metadata)
    save_file(tensors, path, metadata={METADATA_KEY: json.dumps(metadata)})


@pytest.mark.parametrize(
    ("tensors", "metadata", "message"),
    [
        (lambda t: t.pop(next(name for name in t if name.startswith("adapters."))),
         lambda m: None, "tensors do not fit the model its metadata describes .*adapters.* missing"),
        (lambda t: t.update({"backbone.logit_scale": t["backbone.logit_scale"].repeat(2)}),
         lambda m: None, "backbone.logit_scale shaped \\(2,\\), expected \\(\\)"),
        (lambda t: t.pop("class_embeddings"), lambda m: None, "tensor 'class_embeddings' is missing"),
        (lambda t: None, lambda m: m.pop("num_frames"), "metadata 'num_frames' is missing or not an integer"),
        (lambda t: None, lambda m: m["adapter"].update(bottleneck="8"), "'adapter.bottleneck' must be an integer"),
        (lambda t: None, lambda m: m.update(sampling="dense"), "metadata 'dense_stride' must be a positive integer"),
        (lambda t: None, lambda m: m.update(sampling=None), "metadata 'sampling' must be one of segment, dense"),
        (lambda t: None, lambda m: m.update(preprocess_cfg={}), "metadata 'preprocess_cfg' lacks 'size', 'mean', 'std'"),
        (lambda t: None, lambda m: m["preprocess_cfg"].pop("std"), "metadata 'preprocess_cfg' lacks 'std'"),
        (lambda t: None, lambda m: m["preprocess_cfg"].update(mean="0.5"), "'preprocess_cfg' 'mean' must be 3 numbers"),
        (lambda t: None, lambda m: m.update(bogus=1),
         "unknown metadata key\\(s\\) 'bogus'; valid keys: format, msta_version, backbone, model_cfg, preprocess_cfg, .*newer msta"),
    ],
)
def test_a_damaged_merged_file_is_an_input_error_naming_it(merged, tensors, metadata, message):
    _rewrite(merged, tensors, metadata)
    with pytest.raises(InputError, match=f"m.safetensors: .*{message}"):
        load_merged(merged)


def test_dense_sampling_is_carried_and_files_without_it_mean_segments(merged, tiny_backbone_name):
    dense = merged.with_name("dense.safetensors")
    save_merged(tiny_adapted_model(tiny_backbone_name), dense, ClipSampling(6, "dense", 3))
    assert load_merged(dense).sampling == ClipSampling(6, "dense", 3)
    _rewrite(dense, change_metadata=lambda m: (m.pop("sampling"), m.pop("dense_stride")))  # as older msta wrote
    assert load_merged(dense).sampling == ClipSampling(6, "segment")


def test_merged_file_is_readable_by_group_and_others_under_umask_022(tmp_path, tiny_backbone_name):
    previous = os.umask(0o022)
    try:
        save_merged(tiny_adapted_model(tiny_backbone_name), tmp_path / "m.safetensors", SAMPLING)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "m.safetensors").stat().st_mode) == 0o644
