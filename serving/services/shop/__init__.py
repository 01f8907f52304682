"""Shop domain: catalog, cart, inventory, reviews, accounts and the sign-in helpers around them."""
