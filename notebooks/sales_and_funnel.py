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
# # Sales and funnel
#
# Revenue by day and by category, where sessions drop out of the funnel, and how signup
# cohorts keep buying. Reads **only the warehouse** (`WAREHOUSE_PATH`, else
# `$DATA_DIR/warehouse.duckdb`); rebuild it with `dagster dev -m pipelines` or the nightly job.
# Money is in minor units (cents) in the warehouse and shown in major units here.

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
con.execute("SET TimeZone = 'UTC'")
print(f"warehouse: {path}")

# %% [markdown]
# ## Revenue by day
# Charged orders only (paid, fulfilled, shipped, delivered); booked includes cancelled ones.

# %%
daily = con.sql(
    """
    SELECT date, SUM(revenue_minor) / 100.0 AS revenue, SUM(booked_minor) / 100.0 AS booked,
           SUM(charged_orders) AS orders, SUM(customers) AS customers
    FROM daily_sales GROUP BY date ORDER BY date
    """
).df()
daily

# %%
fig, ax = plt.subplots(figsize=(8, 3))
if len(daily):
    ax.bar(daily["date"].astype(str), daily["revenue"], label="revenue")
    ax.plot(daily["date"].astype(str), daily["booked"], color="black", marker="o", label="booked")
    ax.legend()
ax.set_title("Revenue by day")
ax.set_ylabel("EUR")
ax.tick_params(axis="x", rotation=45)
plt.tight_layout()

# %% [markdown]
# ## Revenue by top-level category

# %%
by_category = con.sql(
    """
    SELECT COALESCE(c.name, '(none)') AS category, SUM(i.line_total_minor) / 100.0 AS revenue,
           SUM(i.quantity) AS units
    FROM fact_order_item i
    LEFT JOIN dim_product p USING (product_id)
    LEFT JOIN dim_category c ON c.slug = p.top_category
    WHERE i.is_charged
    GROUP BY ALL ORDER BY revenue DESC
    """
).df()
by_category

# %%
fig, ax = plt.subplots(figsize=(6, 3))
if len(by_category):
    ax.barh(by_category["category"], by_category["revenue"])
ax.set_title("Revenue by category")
ax.set_xlabel("EUR")
plt.tight_layout()

# %% [markdown]
# ## Funnel drop-offs
# Sessions (30 minutes of inactivity end one) that reached each step.

# %%
funnel = con.sql(
    """
    SELECT SUM(visits) AS visits, SUM(view_sessions) AS viewed,
           SUM(cart_sessions) AS carted, SUM(checkout_sessions) AS checkout,
           SUM(order_sessions) AS ordered
    FROM daily_funnel
    """
).df()
steps = funnel.T.reset_index()
steps.columns = ["step", "sessions"]
steps["sessions"] = steps["sessions"].fillna(0).astype(int)
first = steps["sessions"].iloc[0] or 1
steps["of_visits"] = (steps["sessions"] / first).round(3)
steps["drop_from_previous"] = (
    1 - steps["sessions"] / steps["sessions"].shift(1).where(lambda s: s > 0)
).round(3)
steps

# %%
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(steps["step"], steps["sessions"])
ax.set_title("Funnel: sessions reaching each step")
plt.tight_layout()

# %% [markdown]
# ## Cohort retention
# Share of each signup-month cohort with a charged order in the months after signing up.

# %%
cohorts = con.sql(
    """
    WITH orders AS (
        SELECT u.cohort_month,
               date_diff('month', u.cohort_month, CAST(o.created_at AS DATE)) AS month_n,
               o.user_id
        FROM fact_order o JOIN dim_user u USING (user_id)
        WHERE o.is_charged
    ), sizes AS (SELECT cohort_month, COUNT(*) AS users FROM dim_user GROUP BY ALL)
    SELECT o.cohort_month, o.month_n, COUNT(DISTINCT o.user_id) AS buyers, s.users,
           COUNT(DISTINCT o.user_id) / s.users AS retention
    FROM orders o JOIN sizes s USING (cohort_month)
    GROUP BY o.cohort_month, o.month_n, s.users ORDER BY o.cohort_month, o.month_n
    """
).df()
retention = cohorts.pivot_table(
    index="cohort_month", columns="month_n", values="retention", fill_value=0.0
)
retention

# %%
fig, ax = plt.subplots(figsize=(6, 3))
if retention.size:
    image = ax.imshow(retention.to_numpy(), aspect="auto", cmap="Blues", vmin=0, vmax=1)
    ax.set_yticks(range(len(retention.index)), [str(i) for i in retention.index])
    ax.set_xticks(range(len(retention.columns)), [str(c) for c in retention.columns])
    fig.colorbar(image, ax=ax)
ax.set_title("Cohort retention (months since signup)")
plt.tight_layout()

# %%
con.close()
