"""All tables; importing this module registers every table on ``Base.metadata``."""

from .accounts import SessionLink, User
from .base import Base
from .cart import CartItem as CartItem
from .catalog import Category, Product, ProductAttribute, Review
from .idempotency import IdempotencyKey as IdempotencyKey
from .inventory import Inventory, StockMovement
from .notifications import OutboxMessage as OutboxMessage
from .orders import Order as Order
from .orders import OrderLine as OrderLine
from .orders import OrderTransition as OrderTransition
from .payments import Payment as Payment
from .payments import WebhookReceipt as WebhookReceipt
from .shipping import Shipment as Shipment
from .shipping import ShipmentEvent as ShipmentEvent

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
