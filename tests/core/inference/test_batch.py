import pytest
import torch

from msta_cli.core.data.dataset import VideoFailure
from msta_cli.core.inference.batch import Prediction, predict_videos
from msta_cli.core.inference.labels import LabelSet
from msta_cli.core.inference.predictor import ModelOptions, load_predictor
from msta_cli.core.inference.views import Views, view_probabilities
from tests.core.inference.helpers import FRAMES, write_checkpoint
from tests.helpers.videos import write_not_a_video, write_video

LABELS = LabelSet(("run", "jump", "swim", "climb"), "test")


@pytest.fixture(scope="module")
def predictor(tmp_path_factory, tiny_backbone_name):
    checkpoint = write_checkpoint(tmp_path_factory.mktemp("ckpt"), tiny_backbone_name)
    return load_predictor(str(checkpoint), LABELS, ModelOptions(device="cpu", num_frames=FRAMES))


def test_results_keep_input_order_and_bad_files_become_failures(tmp_path, predictor):
    paths = [
        write_video(tmp_path / "a.mp4", num_frames=10),
        write_not_a_video(tmp_path / "b.mp4"),
        write_video(tmp_path / "c.mp4", num_frames=30, size=(48, 64)),
        tmp_path / "gone.mp4",
    ]
    results = list(predict_videos(predictor, paths, k=2, batch_size=3))
    assert [type(result) for result in results] == [Prediction, VideoFailure, Prediction, VideoFailure]
    assert [result.path for result in results] == [str(path) for path in paths]
    assert "unreadable container" in results[1].reason and results[3].reason == "file not found"
    assert all(len(result.top) == 2 for result in results[::2])


def test_batches_and_views_change_nothing_but_the_averaging(tmp_path, predictor):
    paths = [write_video(tmp_path / f"{i}.mp4", num_frames=8 + 7 * i) for i in range(3)]
    one = list(predict_videos(predictor, paths, k=4, batch_size=1))
    many = list(predict_videos(predictor, paths, k=4, batch_size=3))
    for a, b in zip(one, many):
        assert [label for label, _ in a.top] == [label for label, _ in b.top]
        assert [p for _, p in a.top] == pytest.approx([p for _, p in b.top], abs=1e-6)
    for result in predict_videos(predictor, paths, Views(2, 3), k=4):
        assert sum(p for _, p in result.top) == pytest.approx(1.0, abs=1e-5)
        assert [p for _, p in result.top] == sorted((p for _, p in result.top), reverse=True)


class _LogitsFromPixels:
    """A predictor whose logits for a clip are two of its pixel values."""

    def logits(self, frames: torch.Tensor) -> torch.Tensor:
        return frames[:, 0, 0, 0, :2]


def test_multi_view_probability_is_the_mean_of_the_views_softmax():
    views = torch.zeros(1, 2, FRAMES, 3, 4, 4)
    views[0, 1, 0, 0, 0, 0] = torch.log(torch.tensor(3.0))  # view 2: softmax (0.75, 0.25)
    probabilities = view_probabilities(_LogitsFromPixels(), views)
    torch.testing.assert_close(probabilities, torch.tensor([[0.625, 0.375]]))
