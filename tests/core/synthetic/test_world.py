import numpy as np
import pytest

from msta_cli.core.synthetic import stills
from msta_cli.core.synthetic.vocabulary import SHAPES, CompactTokenizer, vocabulary_text
from msta_cli.core.synthetic.world import (
    DIRECTION_PAIRS, MOTIONS, TEMPLATE, VIDEO_SHAPES, ActionClass, base_classes, classes, descriptions,
    direction_pair_accuracy, novel_classes,
    render_clip,
)

PAIRED = [ActionClass(shape, first) for shape in VIDEO_SHAPES for first, _ in DIRECTION_PAIRS]


def test_same_seed_gives_the_same_bytes_and_another_seed_another_clip():
    action = ActionClass("star", "moving up")
    assert render_clip(action, [3, 1]).tobytes() == render_clip(action, [3, 1]).tobytes()
    assert render_clip(action, [3, 1]).tobytes() != render_clip(action, [3, 2]).tobytes()
    first, second = (stills.batch(np.random.default_rng(7), 16) for _ in range(2))
    assert first[0].tobytes() == second[0].tobytes() and first[1] == second[1]


@pytest.mark.parametrize("action", PAIRED, ids=lambda action: action.name)
def test_direction_pairs_hold_the_same_frames_in_reverse_order(action):
    for seed in range(3):
        clip, reverse = render_clip(action, [seed]), render_clip(action.partner(), [seed])
        assert np.array_equal(clip, reverse[::-1])
        assert not np.array_equal(clip, reverse)  # the order, and only the order, differs
        assert sorted(frame.tobytes() for frame in clip) == sorted(frame.tobytes() for frame in reverse)


def test_frames_change_over_time_and_blinking_has_empty_frames():
    for action in classes():
        clip = render_clip(action, [0])
        assert len({frame.tobytes() for frame in clip}) > 1, action.name
    blinking = render_clip(ActionClass("cross", "blinking"), [0])
    assert [frame.any() for frame in blinking].count(False) == len(blinking) // 2


def test_base_novel_split_shares_every_word_but_no_combination():
    base, novel = base_classes(), novel_classes()
    assert len(base) == len(novel) == len(classes()) // 2
    assert {a.shape for a in base} == set(VIDEO_SHAPES) and {a.motion for a in base} == set(MOTIONS)
    assert not {a.name for a in base} & {a.name for a in novel}
    assert all(action.partner().is_base == action.is_base for action in PAIRED)


def test_stage1_captions_have_no_motion_words_but_every_world_sentence_is_in_the_vocabulary():
    tokenizer = CompactTokenizer.build(vocabulary_text(), 24)
    _, captions, _, _ = stills.batch(np.random.default_rng(0), 256)
    # "left" and "right" are position words too; the verbs and the other directions never appear.
    motion_words = {motion.split()[0] for motion in MOTIONS} | {"video", "up", "down", "clockwise", "counter-clockwise"}
    assert not motion_words & {word for caption in captions for word in caption.split()}
    sentences = captions + [TEMPLATE.format(a.name) for a in classes()]
    sentences += [s for a in classes() for part in descriptions(a).values() for s in part]
    ids = tokenizer(sentences)
    assert not (ids == tokenizer.unknown).any()
    assert (ids.argmax(dim=1) == (ids > 0).sum(dim=1) - 1).all()  # end-of-text is the largest id: argmax pooling finds it
    assert tokenizer(["a zebra"])[0, 2] == tokenizer.unknown


def test_temporal_descriptions_of_a_pair_name_opposite_ends():
    left = descriptions(ActionClass("square", "moving left"))
    right = descriptions(ActionClass("square", "moving right"))
    assert left["spatial"] == right["spatial"] and left["temporal"] != right["temporal"]
    assert "starts at the right and ends at the left" in left["temporal"][0]


def test_direction_pair_accuracy_compares_each_video_with_its_reversed_partner():
    names = ["square moving left", "square moving right", "star blinking"]
    probabilities = np.array([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.1, 0.2, 0.7]])
    assert direction_pair_accuracy(names, np.array([0, 1, 2]), probabilities) == 50.0


def test_direction_pair_accuracy_of_one_pair_keeps_only_that_pairs_videos():
    names = ["square moving left", "square moving right", "star growing", "star shrinking"]
    probabilities = np.array([[0.6, 0.4, 0, 0], [0.7, 0.3, 0, 0], [0, 0, 0.9, 0.1], [0, 0, 0.2, 0.8]])
    labels = np.array([0, 1, 2, 3])
    assert direction_pair_accuracy(names, labels, probabilities) == 75.0
    assert direction_pair_accuracy(names, labels, probabilities, ("moving left", "moving right")) == 50.0
    assert direction_pair_accuracy(names, labels, probabilities, ("growing", "shrinking")) == 100.0
    assert np.isnan(direction_pair_accuracy(names, labels, probabilities, ("moving up", "moving down")))


def test_hard_negative_groups_differ_in_exactly_their_attribute():
    _, _, captions, _ = stills.batch(np.random.default_rng(3), 40, position_share=0.4, shape_share=0.5)
    position_groups, shape_groups = captions[:16], captions[16:36]
    for start in (0, 8):
        group = position_groups[start : start + 8]
        assert len({(c.shape, c.colour, c.size) for c in group}) == 1 and len({c.position for c in group}) == 8
    for start in range(0, 20, len(SHAPES)):
        group = shape_groups[start : start + len(SHAPES)]
        assert len({(c.colour, c.size, c.position) for c in group}) == 1 and {c.shape for c in group} == set(SHAPES)
