import { api } from '../api.js';
import { cartProblemText, cartSubtotals, mixedCurrencyText, removeItem, setQuantity } from '../cart_api.js';
import { countrySelect, defaultCountry, quote, quoteProblemText, totalsList } from '../pricing.js';
import { recStrip } from '../recs.js';
import { currentUser } from '../session.js';
import { announce, clear, errorNotice, h, img, money, notice, setTitle } from '../ui.js';

export async function render(view) {
  setTitle('Your cart');
  view.append(h('h1', {}, 'Your cart'));
  const body = h('div', { class: 'cart' });
  const msg = h('div', { class: 'cart-msg', role: 'status', 'aria-live': 'polite' });
  const more = h('section', { id: 'cart-recs', class: 'strip' });
  view.append(msg, body, more);
  const items = await draw(body, msg);
  if (items && items.length) {
    // Personal picks seeded by the cart itself (its items are never shown again here).
    const user = currentUser();
    const url = user
      ? `/api/v1/recommendations/users/${encodeURIComponent(user.id)}?k=6&surface=cart`
      : '/api/v1/recommendations/session?k=6&surface=cart';
    await recStrip(more, 'Goes well with your cart', [{ url, surface: 'cart' }], { k: 6 });
  }
}

function lineAvailable(item) {
  if (item.available === undefined || item.available === null) return true;
  if (typeof item.available === 'boolean') return item.available;
  return item.available >= item.quantity;
}

async function draw(body, msg, cart) {
  if (!cart) {
    try {
      cart = await api('/api/v1/cart');
    } catch (err) {
      clear(body, errorNotice(err, 'The cart'));
      return;
    }
  }
  const items = cart.items || [];
  if (!items.length) {
    clear(body, h('p', { class: 'empty' }, 'Your cart is empty.'), h('p', {}, h('a', { href: '/', class: 'btn btn-primary' }, 'Continue shopping')));
    return [];
  }
  const rows = items.map((item) => {
    const qty = h('input', { type: 'number', min: 0, max: 999, value: item.quantity, inputmode: 'numeric', id: `qty-${item.product_id}`, class: 'qty' });
    const update = async () => {
      const quantity = Number.parseInt(qty.value, 10);
      if (!Number.isInteger(quantity) || quantity < 0) {
        clear(msg, notice('error', 'Please enter a quantity of 0 or more.'));
        return;
      }
      try {
        const next = quantity === 0 ? await removeItem(item.product_id, item.quantity) : await setQuantity(item.product_id, quantity);
        clear(msg, notice('success', quantity === 0 ? `Removed ${item.title}.` : `Updated ${item.title} to ${quantity}.`));
        await draw(body, msg, next && next.items ? next : undefined);
      } catch (err) {
        clear(msg, notice('error', cartProblemText(err)));
        qty.value = item.quantity;
      }
    };
    qty.addEventListener('change', update);
    const remove = h('button', { type: 'button', class: 'btn btn-link', 'aria-label': `Remove ${item.title}` }, 'Remove');
    remove.addEventListener('click', async () => {
      try {
        const next = await removeItem(item.product_id, item.quantity);
        clear(msg, notice('success', `Removed ${item.title}.`));
        announce(`Removed ${item.title}`);
        await draw(body, msg, next && next.items ? next : undefined);
      } catch (err) {
        clear(msg, notice('error', cartProblemText(err)));
      }
    });
    const ok = lineAvailable(item);
    return h('tr', { dataset: { productId: item.product_id } },
      h('td', { class: 'cart-product' }, img({ id: item.product_id, title: item.title }, 'thumb-img'),
        h('div', {}, h('a', { href: `/p/${item.product_id}` }, item.title),
          ok ? null : h('p', { class: 'warn' }, typeof item.available === 'number' && item.available > 0 ? `Only ${item.available} left — please lower the quantity.` : 'Sold out — please remove it to check out.'))),
      h('td', { 'data-label': 'Price' }, money(item.unit_price_minor, item.currency)),
      h('td', { 'data-label': 'Quantity' }, h('label', { for: qty.id, class: 'visually-hidden' }, `Quantity of ${item.title}`), qty, ' ', remove),
      h('td', { 'data-label': 'Total', class: 'num' }, money(item.line_total_minor, item.currency)));
  });
  const subtotals = cartSubtotals(cart);
  const mixed = subtotals.length > 1;
  const blocked = mixed || items.some((i) => !lineAvailable(i));
  const subtotalLines = mixed
    ? subtotals.map((s) => h('p', { class: 'subtotal', dataset: { currency: s.currency } }, `Subtotal in ${s.currency} `, h('strong', {}, money(s.subtotal_minor, s.currency))))
    : [h('p', { class: 'subtotal' }, 'Subtotal ', h('strong', { id: 'subtotal' }, money(subtotals[0].subtotal_minor, subtotals[0].currency)))];
  clear(body,
    h('table', { class: 'cart-table' },
      h('caption', { class: 'visually-hidden' }, 'Items in your cart'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Product'), h('th', { scope: 'col' }, 'Price'), h('th', { scope: 'col' }, 'Quantity'), h('th', { scope: 'col', class: 'num' }, 'Total'))),
      h('tbody', {}, rows)),
    h('div', { class: 'cart-summary' },
      subtotalLines,
      mixed ? h('p', { class: 'warn', id: 'mixed-currencies' }, mixedCurrencyText(subtotals)) : await estimate(),
      items.some((i) => !lineAvailable(i)) ? h('p', { class: 'warn' }, 'Some items are no longer available in that quantity.') : null,
      h('a', { href: '/checkout', class: `btn btn-primary${blocked ? ' disabled' : ''}`, id: 'to-checkout', 'aria-disabled': blocked ? 'true' : null }, 'Go to checkout')));
  return items;
}

// Shipping, tax and duty for a destination, before checkout (the cart used to say they
// would only be shown there). The country remembered across redraws of the cart.
let estimateCountry = null;
async function estimate() {
  if (!estimateCountry) estimateCountry = (await defaultCountry(Boolean(currentUser()))) || 'DE';
  const select = countrySelect('estimate-country', estimateCountry);
  const out = h('div', { id: 'cart-totals', 'aria-live': 'polite' });
  const refresh = async () => {
    estimateCountry = select.value;
    try {
      clear(out, totalsList(await quote({ country: select.value })));
    } catch (err) {
      clear(out, notice('error', quoteProblemText(err)));
    }
  };
  select.addEventListener('change', refresh);
  await refresh();
  return h('section', { class: 'estimate', 'aria-labelledby': 'estimate-h' },
    h('h2', { id: 'estimate-h' }, 'Shipping, tax and total'),
    h('label', { for: select.id }, 'Ship to '), select, out);
}
