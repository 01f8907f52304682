"""Domain services: the shop's rules, called by routers with keyword-only arguments."""
