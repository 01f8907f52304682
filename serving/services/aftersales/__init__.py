"""After delivery: returns (request, authorize, receive, refund) and payment disputes.

Its own package because both are sagas of their own that start long after the checkout's
ended, on a delivered (or any charged) order: they move stock back through the same ledger of
stock movements, give money back through the same provider (with derived refund keys), and
adjust the sellers' payout ledger, without changing how an order is placed.

Modules: :mod:`.returns`, :mod:`.disputes` (the shop's side, driven by verified provider
webhooks), :mod:`.provider_disputes` (the simulated provider's side), :mod:`.runtime`.
"""
