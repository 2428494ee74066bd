"""Several processes (DDP) share an epoch's batches: whole batches, a partition of the epoch, never a repeat."""

from __future__ import annotations

import torch
from torch.utils.data import BatchSampler, RandomSampler, SequentialSampler

from emg_lightning.data.datamodule import ShardedBatches


def shares(batches, world, seed, equal, epoch=0):
    out = []
    for rank in range(world):
        sharded = ShardedBatches(batches, rank, world, seed, equal)
        sharded.set_epoch(epoch)
        out.append(list(sharded))
        assert len(sharded) == len(out[-1])
    return out


def test_evaluation_batches_are_shared_whole_with_none_repeated_or_left_out():
    batches = BatchSampler(SequentialSampler(range(23)), 4, drop_last=False)  # 6 batches, the last of 3
    first, second = shares(batches, 2, seed=0, equal=False)
    assert first == [[0, 1, 2, 3], [8, 9, 10, 11], [16, 17, 18, 19]]
    assert second == [[4, 5, 6, 7], [12, 13, 14, 15], [20, 21, 22]]
    three = shares(batches, 4, seed=0, equal=False)  # 6 batches on 4 processes: 2, 2, 1, 1
    assert [len(s) for s in three] == [2, 2, 1, 1]
    assert sorted(i for share in three for batch in share for i in batch) == list(range(23))


def test_training_shares_partition_one_shuffle_in_equal_numbers_and_leave_the_global_generator_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    batches = BatchSampler(RandomSampler(range(50)), 8, drop_last=False)  # 7 batches
    first, second = shares(batches, 2, seed=7, equal=True, epoch=3)
    assert len(first) == len(second) == 3  # gradient synchronisation needs as many steps on each
    seen = [i for share in (first, second) for batch in share for i in batch]
    assert len(seen) == len(set(seen)) == 48  # one shuffle partitioned: the seventh batch skipped this epoch
    assert torch.equal(torch.get_rng_state(), before)
    assert shares(batches, 2, seed=7, equal=True, epoch=3) == [first, second]  # every rank draws the same shuffle
    assert shares(batches, 2, seed=7, equal=True, epoch=4) != [first, second]  # a new one each epoch
    assert shares(batches, 2, seed=8, equal=True, epoch=3) != [first, second]  # and each seed
