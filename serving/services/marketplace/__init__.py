"""The marketplace: third-party sellers, their products and stock, per-seller parcels and the
payout ledger.

A package of its own (not part of the checkout) because a seller's world is a separate
authority boundary — a seller may see and change only their own products, stock and order
lines — and because the checkout core stays unaware of sellers: an order is paid once for all
its lines, and this package splits what happened into per-seller parcels and ledger entries in
an idempotent pass (:mod:`.fulfilment`), keyed so that any number of passes book once.

Modules: :mod:`.sellers` (accounts, ownership, the seller's products and stock),
:mod:`.fulfilment` (parcels per seller, sale/commission/refund entries), :mod:`.ledger`
(balances and payouts).
"""
