# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Search and recommendations
#
# What people search for, what finds nothing, how clicks fall off with position, and how each
# recommender version performs. Reads **only the warehouse** (`WAREHOUSE_PATH`, else
# `$DATA_DIR/warehouse.duckdb`). Positions are 0-based, as the events carry them.

# %%
import os
from pathlib import Path

import duckdb
import matplotlib.pyplot as plt

path = Path(
    os.environ.get("WAREHOUSE_PATH")
    or Path(os.environ.get("DATA_DIR", "data")) / "warehouse.duckdb"
)
con = duckdb.connect(str(path), read_only=True)
print(f"warehouse: {path}")

# %% [markdown]
# ## Top queries

# %%
top = con.sql(
    """
    SELECT query_norm AS query, COUNT(*) AS searches,
           AVG(CAST(clicks > 0 AS DOUBLE)) AS click_rate,
           AVG(results_shown) AS avg_results
    FROM fact_search GROUP BY ALL ORDER BY searches DESC, query LIMIT 20
    """
).df()
top

# %% [markdown]
# ## Zero-result queries
# Candidates for synonyms, spelling fixes or catalog gaps.

# %%
zero = con.sql(
    """
    SELECT query_norm AS query, COUNT(*) AS searches, MAX(ts) AS last_seen
    FROM fact_search WHERE is_zero_result
    GROUP BY ALL ORDER BY searches DESC, query LIMIT 20
    """
).df()
share = con.execute("SELECT AVG(CAST(is_zero_result AS DOUBLE)) FROM fact_search").fetchall()[0][0]
print(f"zero-result share: {share or 0:.1%}")
zero

# %% [markdown]
# ## Search CTR by position

# %%
ctr_pos = con.sql(
    """
    SELECT position, COUNT(*) AS impressions, AVG(CAST(clicked AS DOUBLE)) AS ctr,
           AVG(CAST(added_to_cart AS DOUBLE)) AS cart_rate,
           AVG(CAST(purchased AS DOUBLE)) AS purchase_rate
    FROM search_impressions GROUP BY position ORDER BY position LIMIT 20
    """
).df()
ctr_pos

# %%
fig, ax = plt.subplots(figsize=(6, 3))
if len(ctr_pos):
    ax.plot(ctr_pos["position"], ctr_pos["ctr"], marker="o", label="click")
    ax.plot(ctr_pos["position"], ctr_pos["cart_rate"], marker="s", label="add to cart")
    ax.legend()
ax.set_title("Search CTR by position")
ax.set_xlabel("position (0 = top)")
plt.tight_layout()

# %% [markdown]
# ## Recommendation CTR by model version

# %%
by_version = con.sql(
    """
    SELECT COALESCE(model_version, '(unknown)') AS model_version,
           COUNT(*) AS impressions, SUM(CAST(clicked AS INTEGER)) AS clicks,
           AVG(CAST(clicked AS DOUBLE)) AS ctr
    FROM fact_rec_impression GROUP BY ALL ORDER BY model_version
    """
).df()
by_version

# %%
fig, ax = plt.subplots(figsize=(6, 3))
if len(by_version):
    ax.bar(by_version["model_version"], by_version["ctr"])
ax.set_title("Recommendation CTR by model version")
ax.set_ylabel("CTR")
plt.tight_layout()

# %% [markdown]
# ## Rec CTR by position, per version

# %%
rec_pos = con.sql(
    """
    SELECT COALESCE(model_version, '(unknown)') AS model_version, position,
           AVG(CAST(clicked AS DOUBLE)) AS ctr, COUNT(*) AS impressions
    FROM fact_rec_impression GROUP BY ALL ORDER BY ALL
    """
).df()
rec_pos.pivot_table(index="position", columns="model_version", values="ctr", fill_value=0.0)

# %%
con.close()
