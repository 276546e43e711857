from msta_cli.core.data.sharding import ShardedSampler


def test_shards_cover_every_sample_with_padding_from_the_start():
    shards = [ShardedSampler(7, rank, 2, shuffle=False).shard() for rank in range(2)]
    assert shards == [[0, 2, 4, 6], [1, 3, 5, 0]]


def test_order_is_seeded_per_epoch_and_resumable_mid_epoch():
    sampler = ShardedSampler(10, seed=4)
    sampler.set_epoch(2)
    epoch_two = list(sampler)
    sampler.set_epoch(3)
    assert list(sampler) != epoch_two and sorted(sampler) == list(range(10))
    sampler.set_epoch(2, start=6)
    assert list(sampler) == epoch_two[6:] and len(sampler) == 4
    assert list(ShardedSampler(10, seed=4).shard()) != list(ShardedSampler(10, seed=5).shard())
