// /returns (your return requests) and /orders/{id}/return (ask to return items of a delivered
// order: choose how many of each, give a reason; the shop authorizes, receives and refunds).
import { api } from '../api.js';
import { currentUser } from '../session.js';
import { clear, dateText, errorNotice, field, h, money, notice, setTitle } from '../ui.js';

const STATUS_TEXT = {
  requested: 'Requested — waiting for approval',
  authorized: 'Approved — send the items back',
  received: 'Received — refund on its way',
  refunded: 'Refunded',
  rejected: 'Not accepted',
};

function needSignIn(view, next) {
  view.append(notice('info', 'Please sign in to see your returns.', null,
    h('p', {}, h('a', { class: 'btn btn-primary', href: `/signin?next=${encodeURIComponent(next)}` }, 'Sign in'))));
}

export async function render(view, ctx) {
  if (ctx.variant === 'new') return renderNew(view, ctx.match[0], ctx.navigate);
  return renderList(view, ctx.params);
}

async function renderList(view, params) {
  setTitle('Your returns');
  view.append(h('h1', {}, 'Your returns'));
  if (!currentUser()) return needSignIn(view, '/returns');
  if (params.get('requested')) view.append(notice('success', 'Your return request is in.', 'We will email you when it is approved.'));
  let data;
  try {
    data = (await api('/api/v1/returns')).data || [];
  } catch (err) {
    if (err.status === 401) return needSignIn(view, '/returns');
    view.append(errorNotice(err, 'Returns'));
    return;
  }
  if (!data.length) {
    view.append(h('p', {}, 'You have no returns. You can return items of a delivered order within 30 days from ', h('a', { href: '/orders' }, 'your orders'), '.'));
    return;
  }
  view.append(h('table', { class: 'orders-table', id: 'returns-table' },
    h('caption', { class: 'visually-hidden' }, 'Your returns, newest first'),
    h('thead', {}, h('tr', {}, ['Return', 'Order', 'Requested', 'Items', 'Status', 'Refund'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, data.map((r) => h('tr', { dataset: { returnId: r.id } },
      h('td', { 'data-label': 'Return' }, r.id),
      h('td', { 'data-label': 'Order' }, h('a', { href: `/orders/${encodeURIComponent(r.order_id)}` }, `#${r.order_id}`)),
      h('td', { 'data-label': 'Requested' }, dateText(r.created_at)),
      h('td', { 'data-label': 'Items' }, r.lines.map((l) => `${l.quantity} × product ${l.product_id}`).join(', ')),
      h('td', { 'data-label': 'Status', class: 'return-status' }, STATUS_TEXT[r.status] || r.status),
      h('td', { 'data-label': 'Refund', class: 'num' }, money(r.status === 'refunded' ? r.refunded_minor : r.amount_minor, r.currency)))))));
}

async function renderNew(view, orderId, navigate) {
  setTitle('Return items');
  view.append(h('h1', {}, `Return items of order #${orderId}`));
  if (!currentUser()) return needSignIn(view, location.pathname);
  let order;
  try {
    order = await api(`/api/v1/orders/${encodeURIComponent(orderId)}`);
  } catch (err) {
    view.append(err.status === 404 && !err.missing ? notice('info', 'We could not find that order.') : errorNotice(err, 'Returns'));
    return;
  }
  if (order.status !== 'delivered') {
    view.append(notice('info', 'Items can be returned once the order is delivered.'));
    return;
  }
  const msg = h('div', { id: 'return-msg', tabindex: '-1', 'aria-live': 'assertive' });
  const quantities = (order.items || []).map((item) => {
    const select = h('select', { id: `return-qty-${item.product_id}`, name: `qty-${item.product_id}` },
      Array.from({ length: item.quantity + 1 }, (_, n) => h('option', { value: String(n) }, String(n))));
    return { item, select };
  });
  const reason = h('input', { id: 'return-reason', maxlength: 200 });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'request-return' }, 'Request return');
  const form = h('form', { class: 'checkout-form', novalidate: true },
    h('fieldset', {}, h('legend', {}, 'How many of each item?'),
      quantities.map(({ item, select }) => field(`${item.title || `Product ${item.product_id}`} (${money(item.unit_price_minor, order.currency)} each)`, select))),
    field('Reason (optional)', reason), msg, submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const lines = quantities
      .map(({ item, select }) => ({ product_id: item.product_id, quantity: Number.parseInt(select.value, 10) }))
      .filter((line) => line.quantity > 0);
    if (!lines.length) {
      clear(msg, notice('error', 'Choose at least one item to return.'));
      msg.focus();
      return;
    }
    submit.disabled = true;
    try {
      await api('/api/v1/returns', { method: 'POST', json: { order_id: order.id, lines, reason: reason.value.trim() } });
      navigate('/returns?requested=1');
    } catch (err) {
      submit.disabled = false;
      const text = /return-window-closed/.test(err.type) ? 'The 30 days for returning this order are over.'
        : /return-exceeds-order/.test(err.type) ? `Only ${err.problem.returnable} of that item can still be returned.`
          : err.message;
      clear(msg, notice('error', text));
      msg.focus();
    }
  });
  view.append(form);
}
