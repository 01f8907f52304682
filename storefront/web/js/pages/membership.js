// /membership: the caller's paid membership (free standard shipping), join with a test card,
// cancel at the end of the period paid for, or take the cancellation back.
import { api } from '../api.js';
import { currentUser } from '../session.js';
import { clear, dateText, errorNotice, field, h, money, notice, setTitle } from '../ui.js';
import { declineMessage } from './checkout.js';

const STATUS_TEXT = {
  active: 'Active',
  past_due: 'Payment overdue — we are retrying your card',
  incomplete: 'Waiting for the first payment',
  ended: 'Ended',
  none: 'Not a member',
};

export async function render(view) {
  setTitle('Membership');
  view.append(h('h1', {}, 'Membership'),
    h('p', { class: 'muted' }, 'Free standard shipping on every order, billed monthly. Cancel any time: it stays on until the end of the month you paid for.'));
  if (!currentUser()) {
    view.append(notice('info', 'Please sign in to see your membership.', null,
      h('p', {}, h('a', { class: 'btn btn-primary', href: '/signin?next=/membership' }, 'Sign in'))));
    return;
  }
  const box = h('div', { id: 'membership' });
  const msg = h('div', { id: 'membership-msg', tabindex: '-1', 'aria-live': 'assertive' });
  view.append(msg, box);
  await show(box, msg);
}

async function show(box, msg) {
  let m;
  try {
    m = await api('/api/v1/membership');
  } catch (err) {
    clear(box, errorNotice(err, 'Membership'));
    return;
  }
  const rows = [h('dt', {}, 'Status'), h('dd', { id: 'membership-status' }, STATUS_TEXT[m.status] || m.status)];
  if (m.status !== 'none' && m.status !== 'ended') {
    rows.push(h('dt', {}, 'Price'), h('dd', {}, `${money(m.price_minor, m.currency)} a month`));
    rows.push(h('dt', {}, m.cancel_at_period_end ? 'Ends on' : 'Renews on'), h('dd', {}, dateText(m.current_period_end)));
    if (m.status === 'past_due' && m.grace_until) rows.push(h('dt', {}, 'Benefits until'), h('dd', {}, dateText(m.grace_until)));
  }
  rows.push(h('dt', {}, 'Free standard shipping'), h('dd', { id: 'membership-shipping' }, m.free_standard_shipping ? 'Yes' : 'No'));
  clear(box, h('dl', { class: 'account' }, rows));
  if (m.status === 'active' || m.status === 'past_due') {
    const label = m.cancel_at_period_end ? 'Keep my membership' : 'Cancel at the end of this month';
    const btn = h('button', { type: 'button', class: 'btn btn-secondary', id: m.cancel_at_period_end ? 'membership-resume' : 'membership-cancel' }, label);
    btn.addEventListener('click', async () => {
      btn.disabled = true;
      try {
        await api(`/api/v1/membership/${m.cancel_at_period_end ? 'resume' : 'cancel'}`, { method: 'POST' });
        clear(msg, notice('success', m.cancel_at_period_end ? 'Your membership continues.' : 'Cancelled. Your benefits last until the end of the month you paid for.'));
        await show(box, msg);
      } catch (err) {
        btn.disabled = false;
        clear(msg, errorNotice(err, 'Membership'));
      }
    });
    box.append(btn);
  } else {
    box.append(joinForm(m, box, msg));
  }
}

function joinForm(m, box, msg) {
  const input = (id, attrs = {}) => h('input', { id, name: id, required: true, ...attrs });
  const card = input('member-card-number', { autocomplete: 'cc-number', inputmode: 'numeric', maxlength: 23, placeholder: '4242 4242 4242 4242', pattern: '[0-9 ]{12,23}' });
  const expMonth = input('member-card-exp-month', { autocomplete: 'cc-exp-month', inputmode: 'numeric', maxlength: 2, placeholder: 'MM', pattern: '[0-9]{1,2}' });
  const expYear = input('member-card-exp-year', { autocomplete: 'cc-exp-year', inputmode: 'numeric', maxlength: 4, placeholder: 'YYYY', pattern: '[0-9]{2,4}' });
  const cvc = input('member-card-cvc', { autocomplete: 'cc-csc', inputmode: 'numeric', maxlength: 4, placeholder: '123', pattern: '[0-9]{3,4}' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'membership-join' }, m.status === 'ended' ? 'Join again' : 'Join');
  const form = h('form', { class: 'checkout-form', novalidate: true },
    h('fieldset', {}, h('legend', {}, 'Pay the first month'),
      h('p', { class: 'hint' }, 'Test mode: 4242 4242 4242 4242 with any future date and any CVC; 4000 0000 0000 0002 is declined.'),
      field('Card number', card), h('div', { class: 'row' }, field('Expiry month', expMonth), field('Expiry year', expYear), field('CVC', cvc))),
    submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const invalid = [...form.querySelectorAll('input')].find((el) => !el.checkValidity());
    if (invalid) {
      invalid.setAttribute('aria-invalid', 'true');
      clear(msg, notice('error', 'Please check the card details.'));
      invalid.focus();
      return;
    }
    submit.disabled = true;
    try {
      let year = Number.parseInt(expYear.value, 10);
      if (year < 100) year += 2000;
      const method = await api('/api/v1/payments/methods', {
        method: 'POST',
        json: { card_number: card.value.replace(/\s+/g, ''), exp_month: Number.parseInt(expMonth.value, 10), exp_year: year, cvc: cvc.value },
      });
      await api('/api/v1/membership', { method: 'POST', json: { payment_method: method.payment_method } });
      clear(msg, notice('success', 'Welcome! Standard shipping is now free on your orders.'));
      await show(box, msg);
    } catch (err) {
      submit.disabled = false;
      clear(msg, err.status === 402
        ? notice('error', `Payment declined: ${declineMessage(err.problem)}`, 'No money was taken. Please try another card.')
        : errorNotice(err, 'Membership'));
      msg.focus();
    }
  });
  return form;
}
