"""A customer's own records: the address book and the wishlist.

Apart from ``pricing`` because these are per-person data with their own privacy rule
(addresses never reach the lake) and no money in them; the checkout only reads an address
from here to know where an order goes.
"""
