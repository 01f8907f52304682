"""The paid membership: a monthly subscription charged through the payment provider that makes
standard shipping free.

Its own package because it is its own small saga beside the checkout's (charge outside any
transaction, derived provider keys, a pass that finishes what a crash left) with its own
clock (renewals, retries, a grace period), and because checkout pricing only needs one
question answered: :func:`has_free_shipping`.
"""

from .subscriptions import has_free_shipping, status_of

__all__ = ["has_free_shipping", "status_of"]
