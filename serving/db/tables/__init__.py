"""All tables; importing this module registers every table on ``Base.metadata``."""

from .accounts import SessionLink, User
from .aftersales import Dispute as Dispute
from .aftersales import ReturnLine as ReturnLine
from .aftersales import ReturnRequest as ReturnRequest
from .aftersales import SimDispute as SimDispute
from .base import Base
from .cart import CartItem as CartItem
from .catalog import Category, Product, ProductAttribute, Review
from .customer import Address as Address
from .customer import WishlistItem as WishlistItem
from .idempotency import IdempotencyKey as IdempotencyKey
from .inventory import Inventory, StockMovement
from .marketplace import Seller as Seller
from .marketplace import SellerLedgerEntry as SellerLedgerEntry
from .marketplace import SellerProduct as SellerProduct
from .marketplace import SellerShipment as SellerShipment
from .membership import Membership as Membership
from .membership import MembershipCharge as MembershipCharge
from .notifications import OutboxMessage as OutboxMessage
from .orders import Order as Order
from .orders import OrderLine as OrderLine
from .orders import OrderTransition as OrderTransition
from .payments import Payment as Payment
from .payments import WebhookReceipt as WebhookReceipt
from .pricing import DutyRate as DutyRate
from .pricing import OrderCharge as OrderCharge
from .pricing import ProductWeight as ProductWeight
from .pricing import Promotion as Promotion
from .pricing import PromotionRedemption as PromotionRedemption
from .pricing import PromotionUsage as PromotionUsage
from .pricing import ShippingRate as ShippingRate
from .pricing import TaxRate as TaxRate
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
