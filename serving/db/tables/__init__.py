"""All tables; importing this module registers every table on ``Base.metadata``."""

from . import cart as cart
from . import idempotency as idempotency
from . import notifications as notifications
from . import orders as orders
from . import payments as payments
from . import shipping as shipping
from .accounts import SessionLink, User
from .base import Base
from .catalog import Category, Product, ProductAttribute, Review
from .inventory import Inventory, StockMovement

__all__ = [
    "Base",
    "Category",
    "Inventory",
    "Product",
    "ProductAttribute",
    "Review",
    "SessionLink",
    "StockMovement",
    "User",
]
