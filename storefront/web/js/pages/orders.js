import { api } from '../api.js';
import { currentUser } from '../session.js';
import { clear, dateText, errorNotice, h, money, notice, setTitle } from '../ui.js';

const CANCELLABLE = new Set(['pending', 'reserved', 'paid', 'fulfilled', 'processing']);

function orderList(data) {
  if (Array.isArray(data)) return data;
  return (data && (data.data || data.orders || data.items)) || [];
}

function statusBadge(status) {
  return h('span', { class: `status status-${String(status).replace(/[^a-z_]/gi, '')}` }, String(status).replace(/_/g, ' '));
}

function needSignIn(view, next) {
  view.append(notice('info', 'Please sign in to see your orders.', null,
    h('p', {}, h('a', { class: 'btn btn-primary', href: `/signin?next=${encodeURIComponent(next)}` }, 'Sign in'))));
}

export async function render(view, ctx) {
  if (ctx.variant === 'list') return renderList(view);
  return renderDetail(view, ctx.match[0], ctx.variant === 'confirmation');
}

async function renderList(view) {
  setTitle('Your orders');
  view.append(h('h1', {}, 'Your orders'));
  if (!currentUser()) return needSignIn(view, '/orders');
  let orders;
  try {
    orders = orderList(await api('/api/v1/orders'));
  } catch (err) {
    if (err.status === 401) return needSignIn(view, '/orders');
    view.append(errorNotice(err, 'Order history'));
    return;
  }
  if (!orders.length) {
    view.append(h('p', {}, 'You have no orders yet. ', h('a', { href: '/' }, 'Start shopping'), '.'));
    return;
  }
  view.append(h('table', { class: 'orders-table' },
    h('caption', { class: 'visually-hidden' }, 'Your orders, newest first'),
    h('thead', {}, h('tr', {}, ['Order', 'Placed', 'Items', 'Status', 'Tracking', 'Total'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, orders.map((o) => h('tr', { dataset: { orderId: o.id } },
      h('td', { 'data-label': 'Order' }, h('a', { href: `/orders/${encodeURIComponent(o.id)}` }, `#${o.id}`)),
      h('td', { 'data-label': 'Placed' }, dateText(o.created_at)),
      h('td', { 'data-label': 'Items' }, (o.items || []).map((i) => `${i.quantity} × ${i.title || `product ${i.product_id}`}`).join(', ')),
      h('td', { 'data-label': 'Status' }, statusBadge(o.status)),
      h('td', { 'data-label': 'Tracking' }, o.shipment && o.shipment.tracking_number ? `${o.shipment.tracking_number} (${String(o.shipment.status || '').replace(/_/g, ' ')})` : '—'),
      h('td', { 'data-label': 'Total', class: 'num' }, money(o.total_minor, o.currency)))))));
}

async function renderDetail(view, id, confirmation) {
  setTitle(confirmation ? 'Thank you' : `Order ${id}`);
  let order;
  try {
    order = await api(`/api/v1/orders/${encodeURIComponent(id)}`);
  } catch (err) {
    view.append(h('h1', {}, `Order #${id}`));
    if (err.status === 401) return needSignIn(view, location.pathname);
    view.append(err.status === 404 && !err.missing ? notice('info', 'We could not find that order.') : errorNotice(err, 'Order details'));
    return;
  }
  if (confirmation) {
    view.append(h('h1', {}, 'Thank you for your order!'),
      notice('success', `Order #${order.id} is confirmed.`, confirmationText(order.status)));
  } else {
    view.append(h('h1', {}, `Order #${order.id}`));
  }
  const msg = h('div', { role: 'status', 'aria-live': 'polite' });
  view.append(h('p', {}, 'Status: ', statusBadge(order.status), order.created_at ? ` · placed ${dateText(order.created_at)}` : ''), msg);
  view.append(h('table', { class: 'orders-table' },
    h('caption', {}, 'Items'),
    h('thead', {}, h('tr', {}, ['Product', 'Quantity', 'Price'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, (order.items || []).map((i) => h('tr', {},
      h('td', { 'data-label': 'Product' }, h('a', { href: `/p/${i.product_id}` }, i.title || `Product ${i.product_id}`)),
      h('td', { 'data-label': 'Quantity' }, String(i.quantity)),
      h('td', { 'data-label': 'Price', class: 'num' }, money(i.line_total_minor ?? i.unit_price_minor * i.quantity, i.currency || order.currency))))),
    h('tfoot', {}, h('tr', {}, h('th', { scope: 'row', colspan: 2 }, 'Total'), h('td', { class: 'num' }, money(order.total_minor, order.currency))))));
  if (order.payment) {
    const p = order.payment;
    view.append(h('p', {}, 'Payment: ', [p.brand, p.last4 ? `•••• ${p.last4}` : null, p.status].filter(Boolean).join(' · ')));
  }
  view.append(tracking(order.shipment));
  if (CANCELLABLE.has(order.status)) {
    const btn = h('button', { type: 'button', class: 'btn btn-secondary', id: 'cancel-order' }, 'Cancel order');
    btn.addEventListener('click', async () => {
      if (!window.confirm('Cancel this order? Paid orders are refunded.')) return;
      btn.disabled = true;
      try {
        await api(`/api/v1/orders/${encodeURIComponent(order.id)}/cancel`, { method: 'POST' });
        clear(msg, notice('success', 'Your order is cancelled.'));
        btn.remove();
      } catch (err) {
        btn.disabled = false;
        clear(msg, notice('error', err.status === 409 ? 'This order can no longer be cancelled.' : err.message));
      }
    });
    view.append(btn);
  }
  if (order.status === 'delivered') {
    view.append(h('p', {}, h('a', { class: 'btn btn-secondary', id: 'return-items', href: `/orders/${encodeURIComponent(order.id)}/return` }, 'Return items')));
  }
  view.append(h('p', {}, h('a', { href: '/orders' }, 'All your orders')));
}

function tracking(shipment) {
  const section = h('section', { class: 'tracking', 'aria-labelledby': 'tracking-h' }, h('h2', { id: 'tracking-h' }, 'Delivery'));
  if (!shipment) {
    section.append(h('p', { class: 'muted' }, 'Not shipped yet. A tracking number appears here once it is.'));
    return section;
  }
  section.append(h('p', {}, 'Tracking number ', h('strong', { id: 'tracking-number' }, shipment.tracking_number || '—'), shipment.status ? ` · ${String(shipment.status).replace(/_/g, ' ')}` : ''));
  const events = shipment.events || [];
  if (events.length) {
    section.append(h('ol', { class: 'timeline' }, events.map((e) => h('li', {},
      h('strong', {}, String(e.status || e.type || '').replace(/_/g, ' ')),
      e.description ? ` — ${e.description}` : '',
      e.at || e.timestamp || e.created_at ? ` — ${dateText(e.at || e.timestamp || e.created_at)}` : '',
      e.location ? ` · ${e.location}` : ''))));
  }
  return section;
}

// What happens next, in words that match the order's state (the shop emails on each step).
export function confirmationText(status) {
  switch (status) {
    case 'pending':
    case 'reserved':
      return 'We are waiting for your payment to be confirmed; you will get an email when it is.';
    case 'paid':
    case 'held':
      return 'Your payment is confirmed. We will email you when your order ships.';
    case 'fulfilled':
      return 'Your order is packed and ready for the carrier. We will email you when it ships.';
    case 'shipped':
    case 'delivered':
      return 'Your order is on its way. The tracking details are below.';
    default:
      return `Status: ${String(status).replace(/_/g, ' ')}.`;
  }
}
