"""Synthetic shoppers with hidden preferences and the demo catalog: a client of the shop's API
(HTTP or an in-process ASGI client) that imports nothing of serving."""
