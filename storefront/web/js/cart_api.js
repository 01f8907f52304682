// Cart calls shared by the product, cart and checkout pages.
import { api } from './api.js';
import { track } from './events.js';

export async function addToCart(productId, quantity, attribution = {}) {
  const cart = await api('/api/v1/cart/items', { method: 'POST', json: { product_id: Number(productId), quantity } });
  track('add_to_cart', { product_id: productId, search_id: attribution.search_id, rec_id: attribution.rec_id, props: { quantity, source: attribution.source } });
  document.dispatchEvent(new CustomEvent('cart:changed'));
  return cart;
}

export async function setQuantity(productId, quantity) {
  const cart = await api(`/api/v1/cart/items/${encodeURIComponent(productId)}`, { method: 'PATCH', json: { quantity } });
  document.dispatchEvent(new CustomEvent('cart:changed'));
  return cart;
}

export async function removeItem(productId, quantity) {
  const cart = await api(`/api/v1/cart/items/${encodeURIComponent(productId)}`, { method: 'DELETE' });
  track('remove_from_cart', { product_id: productId, props: { quantity } });
  document.dispatchEvent(new CustomEvent('cart:changed'));
  return cart;
}

export function cartProblemText(err) {
  if (err.missing) return 'The cart is not available yet. Please try again a little later.';
  if (err.problem.code === 'currency_mismatch') {
    return `Your cart is in ${err.problem.cart_currency} and this item is priced in ${err.problem.currency}. An order is paid in one currency: check out your cart first, then order this separately.`;
  }
  if (err.status === 409 || /out-of-stock/.test(err.type)) {
    const left = err.problem.available;
    if (left === 0) return 'Sorry, this item is sold out.';
    if (typeof left === 'number') return `Sorry, only ${left} left — please choose a smaller quantity.`;
    return 'Sorry, there is not enough stock for that quantity.';
  }
  return err.message || 'The cart could not be updated.';
}

// One subtotal per currency, as the cart API gives them. The checkout takes one currency per
// order and refuses a cart that mixes them, so amounts in different currencies are never added.
export function cartSubtotals(cart) {
  if (Array.isArray(cart.subtotals) && cart.subtotals.length) return cart.subtotals;
  return [{ currency: cart.currency, subtotal_minor: cart.subtotal_minor }];
}

export function mixedCurrencyText(subtotals) {
  const names = subtotals.map((s) => s.currency).join(' and ');
  return `Your cart holds items priced in ${names}. An order is paid in one currency, so these are not added up: remove the items in all but one currency to check out.`;
}
