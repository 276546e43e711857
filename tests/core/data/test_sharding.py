import pytest

from msta_cli.core.data.sharding import ShardedSampler


def test_shards_cover_every_sample_once_with_empty_padding_slots():
    shards = [ShardedSampler(7, rank, 2, shuffle=False).shard() for rank in range(2)]
    assert shards == [[0, 2, 4, 6], [1, 3, 5, None]]


def test_order_is_seeded_per_epoch_and_resumable_mid_epoch():
    sampler = ShardedSampler(10, seed=4)
    sampler.set_epoch(2)
    epoch_two = list(sampler)
    sampler.set_epoch(3)
    assert list(sampler) != epoch_two and sorted(sampler) == list(range(10))
    sampler.set_epoch(2, start=6)
    assert list(sampler) == epoch_two[6:] and len(sampler) == 4
    assert list(ShardedSampler(10, seed=4).shard()) != list(ShardedSampler(10, seed=5).shard())


@pytest.mark.parametrize(("size", "world_size"), [(1, 3), (2, 5), (1, 8), (3, 2)])
def test_fewer_samples_than_ranks_still_give_every_rank_the_same_count(size, world_size):
    """A rank with fewer samples would run fewer steps, and DDP's collectives would hang."""
    shards = [ShardedSampler(size, rank, world_size, seed=1).shard() for rank in range(world_size)]
    assert {len(shard) for shard in shards} == {-(-size // world_size)}
    samples = [index for shard in shards for index in shard if index is not None]
    assert sorted(samples) == list(range(size))
