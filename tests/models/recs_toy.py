"""A toy data set with two disjoint blocks of users and items, shared by recommender tests."""

from __future__ import annotations

import numpy as np

from features.interactions import Interactions, interactions_from_triples

N_USERS, N_ITEMS_PER_BLOCK, PER_USER = 60, 20, 8


def block_of_item(item: int) -> int:
    """Items 0..19 are block 0, items 100..119 block 1."""
    return 0 if item < 100 else 1


def block_of_user(user: int) -> int:
    """Even users live in block 0, odd users in block 1."""
    return user % 2


def make_two_blocks(seed: int = 0) -> Interactions:
    """Each user touches 8 items of their own block only, so the blocks never mix."""
    rng = np.random.default_rng(seed)
    users, items, stamps = [], [], []
    for user in range(N_USERS):
        offset = 100 * block_of_user(user)
        chosen = rng.choice(N_ITEMS_PER_BLOCK, PER_USER, replace=False) + offset
        users += [user] * PER_USER
        items += chosen.tolist()
        stamps += (1_700_000_000 + 3600 * np.arange(PER_USER) + 60 * user).tolist()
    return interactions_from_triples(np.array(users), np.array(items), None, np.array(stamps))
