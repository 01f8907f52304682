"""The shopper population: hidden preferences drawn once from a seed.

Real shoppers' tastes are never observed, only their clicks; these are the truth behind the
clicks, so that models trained on the simulated log can be scored against what people really
wanted. Preferences are concentrated on purpose (a couple of favourite categories and brands,
a long tail of occasional interest) because that is what makes recommendation non-trivial and
popularity baselines beatable.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulation.catalog import N_FACTORS, Catalog


@dataclass
class Population:
    """Parallel arrays, one row per shopper (index ``u``)."""

    seed: int
    emails: list[str]
    passwords: list[str]
    names: list[str]
    cat_aff: np.ndarray  # (n, n_leaves), rows sum to 1
    brand_aff: np.ndarray  # (n, n_brands), additive log-affinity
    price_sens: np.ndarray  # (n,)
    taste: np.ndarray  # (n, N_FACTORS)
    activity: np.ndarray  # expected sessions per day
    loyalty: np.ndarray  # 0..1: how often a session goes back to past purchases
    has_account: np.ndarray  # bool: registered before the simulated period
    login_habit: np.ndarray  # 0..1: chance a registered shopper signs in at arrival
    card_risk: np.ndarray  # 0..1: chance the first card tried is a failing test card

    def __len__(self) -> int:
        return len(self.emails)

    def to_frame(self, user_ids: dict[int, int] | None = None) -> pd.DataFrame:
        """One row per shopper with every hidden trait, for ``ground_truth/users.parquet``."""
        top = np.argsort(-self.cat_aff, axis=1)[:, :3]
        frame = pd.DataFrame(
            {
                "user_index": np.arange(len(self)),
                "user_id": [(user_ids or {}).get(u) for u in range(len(self))],
                "email": self.emails,
                "price_sensitivity": self.price_sens,
                "activity": self.activity,
                "loyalty": self.loyalty,
                "has_account": self.has_account,
                "login_habit": self.login_habit,
                "card_risk": self.card_risk,
                "top_leaf_1": top[:, 0],
                "top_leaf_2": top[:, 1],
                "top_leaf_3": top[:, 2],
            }
        )
        frame["user_id"] = frame["user_id"].astype("Int64")
        for k in range(N_FACTORS):
            frame[f"t{k}"] = self.taste[:, k]
        return frame


_FIRST = [
    "Ada",
    "Ben",
    "Chloe",
    "Dev",
    "Elif",
    "Femi",
    "Greta",
    "Hiro",
    "Ines",
    "Jonas",
    "Kira",
    "Luca",
    "Maya",
    "Nils",
    "Olga",
    "Paulo",
    "Quinn",
    "Rosa",
]
_LAST = [
    "Novak",
    "Smith",
    "Garcia",
    "Müller",
    "Rossi",
    "Kowalski",
    "Dubois",
    "Silva",
    "Jensen",
    "Okafor",
    "Tanaka",
    "Larsen",
    "Costa",
    "Weber",
]


def generate_population(
    catalog: Catalog, n_users: int = 2000, seed: int = 7, run_tag: str = ""
) -> Population:
    """Draw ``n_users`` shoppers for ``catalog``; deterministic in (seed, n_users, run_tag).

    ``run_tag`` only changes e-mail addresses, so two runs against one server (live mode) do not
    collide on registration while keeping the same hidden preferences.
    """
    rng = np.random.default_rng([seed, 202])
    n_leaves = len(catalog.leaves)
    n_brands = len(catalog.brands)
    # Global category popularity, so that favourites cluster (everyone's into phones; few
    # people into projectors).
    leaf_pop = rng.dirichlet(np.full(n_leaves, 1.5))
    cat_aff = np.zeros((n_users, n_leaves))
    for u in range(n_users):
        k = 1 + min(4, rng.poisson(1.0))
        favourites = rng.choice(n_leaves, size=k, replace=False, p=leaf_pop)
        cat_aff[u, favourites] = 0.8 * rng.dirichlet(np.full(k, 2.0))
        cat_aff[u] += 0.2 * rng.dirichlet(np.full(n_leaves, 0.3))
    cat_aff /= cat_aff.sum(axis=1, keepdims=True)

    brand_aff = np.zeros((n_users, n_brands))
    for u in range(n_users):
        fav = rng.choice(n_brands, size=1 + rng.poisson(1.0), replace=False)
        brand_aff[u, fav] = rng.normal(1.6, 0.4, size=len(fav))
        dislike = rng.choice(n_brands, size=rng.poisson(1.0), replace=False)
        brand_aff[u, dislike] -= 1.2

    price_sens = rng.lognormal(0.0, 0.5, n_users)
    taste = rng.normal(0, 1.0, size=(n_users, N_FACTORS))
    activity = np.minimum(3.0, rng.lognormal(np.log(0.22), 0.8, n_users))
    loyalty = rng.beta(2.0, 3.0, n_users)
    has_account = rng.random(n_users) < 0.45
    login_habit = rng.beta(4.0, 2.0, n_users)
    card_risk = np.where(rng.random(n_users) < 0.1, 0.6, 0.04)

    emails, passwords, names = [], [], []
    tag = f".{run_tag}" if run_tag else ""
    for u in range(n_users):
        emails.append(f"shopper{u:05d}.s{seed}{tag}@shoppers.example.com")
        digest = hashlib.sha256(f"{seed}:{u}:pw".encode()).hexdigest()[:16]
        passwords.append(f"pw-{digest}")
        names.append(f"{_FIRST[u % len(_FIRST)]} {_LAST[(u * 7 + seed) % len(_LAST)]}")
    return Population(
        seed=seed,
        emails=emails,
        passwords=passwords,
        names=names,
        cat_aff=cat_aff,
        brand_aff=brand_aff,
        price_sens=price_sens,
        taste=taste,
        activity=activity,
        loyalty=loyalty,
        has_account=has_account,
        login_habit=login_habit,
        card_risk=card_risk,
    )
