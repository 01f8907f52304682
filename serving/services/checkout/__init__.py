"""Checkout: the order saga from POST /orders to the database, payments, webhooks, recovery."""
