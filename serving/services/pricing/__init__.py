"""What an order costs beyond its goods: shipping, tax, customs duty and promotions.

A domain package of its own (not part of the checkout) because the quote endpoint, the cart
page and the checkout all need the same figures: ``service.quote`` computes them once from the
rate tables, ``quote.compute_quote`` is the pure, integer arithmetic (``money.py`` has the
rounding rule), and ``promotions`` holds and releases coupon uses inside the caller's
transaction. It imports nothing of the checkout, so the checkout can call it from any of its
steps without an import cycle.
"""
