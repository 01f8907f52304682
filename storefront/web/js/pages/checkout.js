import { api } from '../api.js';
import { cartSubtotals, mixedCurrencyText } from '../cart_api.js';
import { track } from '../events.js';
import { countrySelect, quote, quoteProblemText, speedLabel, totalsList } from '../pricing.js';
import { currentUser, uuid } from '../session.js';
import { clear, errorNotice, field, h, money, notice, setTitle } from '../ui.js';

const DECLINES = {
  card_declined: 'Your card was declined.',
  generic_decline: 'Your card was declined.',
  insufficient_funds: 'Your card has insufficient funds.',
  expired_card: 'Your card has expired.',
  incorrect_cvc: 'The security code (CVC) is incorrect.',
  processing_error: 'The card could not be processed. Please try again.',
  timeout: 'The payment provider did not answer in time.',
};

export function declineMessage(problem) {
  const code = problem.decline_code || problem.code || '';
  return DECLINES[code] || problem.detail || 'Your payment was declined.';
}

export async function render(view, { navigate }) {
  setTitle('Checkout');
  view.append(h('h1', {}, 'Checkout'));
  let cart;
  try {
    cart = await api('/api/v1/cart');
  } catch (err) {
    view.append(errorNotice(err, 'Checkout'));
    return;
  }
  if (!cart.items || !cart.items.length) {
    view.append(notice('info', 'Your cart is empty.', null, h('a', { href: '/' }, 'Find something you like')));
    return;
  }
  const subtotals = cartSubtotals(cart);
  if (subtotals.length > 1) {  // the checkout would refuse it: say why before the form
    view.append(notice('error', 'This cart cannot be checked out as one order.', mixedCurrencyText(subtotals), h('a', { href: '/cart' }, 'Edit cart')));
    return;
  }
  const user = currentUser();
  track('checkout_start', { props: { items: cart.item_count ?? cart.items.length, subtotal_minor: cart.subtotal_minor, signed_in: Boolean(user) } });
  if (!user) {
    view.append(notice('info', 'Please sign in to check out.', 'Your cart will be kept.',
      h('p', {}, h('a', { href: '/signin?next=/checkout', class: 'btn btn-primary' }, 'Sign in'), ' ', h('a', { href: '/signup?next=/checkout' }, 'Create an account'))));
  }

  const input = (id, attrs = {}) => h('input', { id, name: id, required: true, ...attrs });
  const name = input('ship-name', { autocomplete: 'name', maxlength: 200, value: (user && user.full_name) || '' });
  const line1 = input('ship-line1', { autocomplete: 'address-line1', maxlength: 200 });
  const city = input('ship-city', { autocomplete: 'address-level2', maxlength: 100 });
  const postal = input('ship-postal', { autocomplete: 'postal-code', maxlength: 20 });
  const book = user ? await api('/api/v1/me/addresses').catch(() => []) : [];
  const saved = book.find((a) => a.is_default);
  const country = countrySelect('ship-country', (saved && saved.country) || 'DE');
  const speed = h('select', { id: 'ship-speed', name: 'shipping_speed' });
  const coupon = h('input', { id: 'coupon-code', name: 'coupon_code', maxlength: 40, autocomplete: 'off', placeholder: 'Optional' });
  const applyCoupon = h('button', { type: 'button', class: 'btn btn-secondary', id: 'apply-coupon' }, 'Apply');
  const card = input('card-number', { autocomplete: 'cc-number', inputmode: 'numeric', maxlength: 23, placeholder: '4242 4242 4242 4242', pattern: '[0-9 ]{12,23}' });
  const expMonth = input('card-exp-month', { autocomplete: 'cc-exp-month', inputmode: 'numeric', maxlength: 2, placeholder: 'MM', pattern: '[0-9]{1,2}' });
  const expYear = input('card-exp-year', { autocomplete: 'cc-exp-year', inputmode: 'numeric', maxlength: 4, placeholder: 'YYYY', pattern: '[0-9]{2,4}' });
  const cvc = input('card-cvc', { autocomplete: 'cc-csc', inputmode: 'numeric', maxlength: 4, placeholder: '123', pattern: '[0-9]{3,4}' });
  const msg = h('div', { id: 'checkout-msg', class: 'checkout-msg', tabindex: '-1', 'aria-live': 'assertive' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'place-order' }, `Pay ${money(cart.subtotal_minor, cart.currency)}`);
  const totals = h('div', { id: 'checkout-totals', 'aria-live': 'polite' });

  const summary = h('aside', { class: 'order-summary', 'aria-labelledby': 'summary-h' },
    h('h2', { id: 'summary-h' }, 'Order summary'),
    h('ul', {}, cart.items.map((i) => h('li', {}, `${i.quantity} × ${i.title}`, h('span', { class: 'num' }, money(i.line_total_minor, i.currency))))),
    totals,
    h('p', {}, h('a', { href: '/cart' }, 'Edit cart')));
  if (user) memberNote(summary);

  // The totals the shop will charge (the same computation as the order's), shown before
  // payment and recomputed when the destination, the speed or the coupon changes.
  let appliedCoupon = '';
  let quoted = null;
  const refresh = async () => {
    try {
      quoted = await quote({ country: country.value, speed: speed.value || undefined, coupon: appliedCoupon || undefined });
    } catch (err) {
      quoted = null;
      if (appliedCoupon && err.problem && String(err.problem.code || '').startsWith('coupon')) {
        appliedCoupon = '';
        clear(msg, notice('error', quoteProblemText(err)));
        return refresh();
      }
      clear(totals, notice('error', quoteProblemText(err)));
      submit.disabled = true;
      return;
    }
    const chosen = quoted.shipping_speed;
    clear(speed, quoted.shipping_options.map((o) => h('option', { value: o.speed, selected: o.speed === chosen },
      `${speedLabel(o.speed)} (${o.min_days}–${o.max_days} days) ${o.price_minor ? money(o.price_minor, quoted.currency) : 'free'}`)));
    clear(totals, totalsList(quoted));
    submit.textContent = `Pay ${money(quoted.total_minor, quoted.currency)}`;
    submit.disabled = false;
  };
  country.addEventListener('change', refresh);
  speed.addEventListener('change', refresh);
  applyCoupon.addEventListener('click', async () => {
    appliedCoupon = coupon.value.trim();
    clear(msg);
    await refresh();
    if (appliedCoupon && quoted) clear(msg, notice('success', `Coupon ${appliedCoupon.toUpperCase()} applied.`));
  });
  if (saved) {
    name.value = saved.name;
    line1.value = saved.line1;
    city.value = saved.city;
    postal.value = saved.postal_code;
  }

  const formEl = h('form', { class: 'checkout-form', novalidate: true },
    h('fieldset', {}, h('legend', {}, 'Shipping address'),
      field('Full name', name), field('Street and number', line1), h('div', { class: 'row' }, field('Postal code', postal), field('City', city)), field('Country', country),
      field('Shipping', speed)),
    h('fieldset', {}, h('legend', {}, 'Coupon'), h('div', { class: 'row' }, field('Coupon code', coupon), applyCoupon)),
    h('fieldset', {}, h('legend', {}, 'Payment'),
      h('p', { class: 'hint' }, 'Test mode: use 4242 4242 4242 4242 with any future date and any CVC. 4000 0000 0000 0002 is declined.'),
      field('Card number', card), h('div', { class: 'row' }, field('Expiry month', expMonth), field('Expiry year', expYear), field('CVC', cvc))),
    msg, submit);

  // One idempotency key per attempt: a network retry of the same attempt reuses it, a new
  // attempt (after a decline or a change) gets a fresh one.
  let attemptKey = null;
  const show = (node) => {
    clear(msg, node);
    msg.focus();
  };

  formEl.addEventListener('submit', async (event) => {
    event.preventDefault();
    const invalid = [...formEl.querySelectorAll('input,select')].find((el) => !el.checkValidity());
    if (invalid) {
      const label = formEl.querySelector(`label[for="${invalid.id}"]`);
      invalid.setAttribute('aria-invalid', 'true');
      show(notice('error', `Please check “${label ? label.textContent : invalid.name}”.`));
      invalid.focus();
      return;
    }
    formEl.querySelectorAll('[aria-invalid]').forEach((el) => el.removeAttribute('aria-invalid'));
    submit.disabled = true;
    clear(msg, notice('info', 'Placing your order…'));
    attemptKey = attemptKey || uuid();
    try {
      let year = Number.parseInt(expYear.value, 10);
      if (year < 100) year += 2000;
      const method = await api('/api/v1/payments/methods', {
        method: 'POST',
        json: { card_number: card.value.replace(/\s+/g, ''), exp_month: Number.parseInt(expMonth.value, 10), exp_year: year, cvc: cvc.value },
      });
      const order = await api('/api/v1/orders', {
        method: 'POST',
        headers: { 'Idempotency-Key': attemptKey },
        json: {
          shipping_address: { name: name.value.trim(), line1: line1.value.trim(), city: city.value.trim(), postal_code: postal.value.trim(), country: country.value },
          payment_method: method.payment_method,
          shipping_speed: speed.value || undefined,
          coupon_code: appliedCoupon || undefined,
        },
      });
      document.dispatchEvent(new CustomEvent('cart:changed'));
      navigate(`/checkout/done/${encodeURIComponent(order.id)}`);
    } catch (err) {
      attemptKey = err.offline ? attemptKey : null;
      submit.disabled = false;
      if (err.status === 402) {
        show(notice('error', `Payment declined: ${declineMessage(err.problem)}`, 'No money was taken and the items are back in stock for you. Please try another card.'));
      } else if (err.status === 409 && /out-of-stock/.test(err.type)) {
        const line = cart.items.find((i) => String(i.product_id) === String(err.problem.product_id));
        const what = line ? line.title : 'An item';
        const left = err.problem.available;
        show(notice('error', `Sorry, ${what} sold out while you were checking out.`,
          typeof left === 'number' && left > 0 ? `Only ${left} left. Lower the quantity in your cart and try again.` : 'No payment was taken. Remove it from your cart to buy the rest.',
          h('p', {}, h('a', { href: '/cart' }, 'Review your cart'))));
        document.dispatchEvent(new CustomEvent('cart:changed'));
      } else if (err.problem && err.problem.code && (String(err.problem.code).startsWith('coupon') || err.problem.code === 'no_shipping_option')) {
        show(notice('error', quoteProblemText(err), 'No payment was taken.'));
        await refresh();
      } else if (err.status === 401) {
        show(notice('error', 'Please sign in to check out.', 'Your cart will be kept.', h('p', {}, h('a', { href: '/signin?next=/checkout' }, 'Sign in'))));
      } else if (err.status === 422 && err.problem && err.problem.errors) {
        show(notice('error', 'Please check your details.', err.problem.errors.map((e) => `${e.loc.slice(1).join(' ')}: ${e.msg}`).join('; ')));
      } else {
        show(errorNotice(err, 'Checkout'));
      }
    }
  });
  view.append(h('div', { class: 'checkout' }, formEl, summary));
  await refresh();
}

// Members see that their standard shipping is free (the price itself comes with the quote).
async function memberNote(summary) {
  try {
    const m = await api('/api/v1/membership');
    if (m.free_standard_shipping) {
      summary.append(h('p', { class: 'member-note', id: 'member-shipping' }, 'Member: standard shipping is free.'));
    }
  } catch {
    // No membership route or no answer: nothing to show.
  }
}
