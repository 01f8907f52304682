import { api } from '../api.js';
import { track } from '../events.js';
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
  const country = h('select', { id: 'ship-country', name: 'country', autocomplete: 'country', required: true },
    [['DE', 'Germany'], ['FR', 'France'], ['NL', 'Netherlands'], ['ES', 'Spain'], ['IT', 'Italy'], ['GB', 'United Kingdom'], ['US', 'United States']]
      .map(([code, label]) => h('option', { value: code }, label)));
  const card = input('card-number', { autocomplete: 'cc-number', inputmode: 'numeric', maxlength: 23, placeholder: '4242 4242 4242 4242', pattern: '[0-9 ]{12,23}' });
  const expMonth = input('card-exp-month', { autocomplete: 'cc-exp-month', inputmode: 'numeric', maxlength: 2, placeholder: 'MM', pattern: '[0-9]{1,2}' });
  const expYear = input('card-exp-year', { autocomplete: 'cc-exp-year', inputmode: 'numeric', maxlength: 4, placeholder: 'YYYY', pattern: '[0-9]{2,4}' });
  const cvc = input('card-cvc', { autocomplete: 'cc-csc', inputmode: 'numeric', maxlength: 4, placeholder: '123', pattern: '[0-9]{3,4}' });
  const msg = h('div', { id: 'checkout-msg', class: 'checkout-msg', tabindex: '-1', 'aria-live': 'assertive' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'place-order' }, `Pay ${money(cart.subtotal_minor, cart.currency)}`);

  const summary = h('aside', { class: 'order-summary', 'aria-labelledby': 'summary-h' },
    h('h2', { id: 'summary-h' }, 'Order summary'),
    h('ul', {}, cart.items.map((i) => h('li', {}, `${i.quantity} × ${i.title}`, h('span', { class: 'num' }, money(i.line_total_minor, i.currency))))),
    h('p', { class: 'subtotal' }, 'Total ', h('strong', {}, money(cart.subtotal_minor, cart.currency))),
    h('p', {}, h('a', { href: '/cart' }, 'Edit cart')));

  const formEl = h('form', { class: 'checkout-form', novalidate: true },
    h('fieldset', {}, h('legend', {}, 'Shipping address'),
      field('Full name', name), field('Street and number', line1), h('div', { class: 'row' }, field('Postal code', postal), field('City', city)), field('Country', country)),
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
}
