// Order totals before payment: the shop's quote (POST /api/v1/checkout/quote), the same
// computation the checkout fixes on the order, drawn as a summary table.
import { api } from './api.js';
import { h, money } from './ui.js';

export const COUNTRIES = [
  ['DE', 'Germany'], ['FR', 'France'], ['NL', 'Netherlands'], ['ES', 'Spain'], ['IT', 'Italy'],
  ['AT', 'Austria'], ['GB', 'United Kingdom'], ['US', 'United States'], ['CH', 'Switzerland'], ['JP', 'Japan'],
];

export function countrySelect(id, selected) {
  return h('select', { id, name: 'country', autocomplete: 'country', required: true },
    COUNTRIES.map(([code, label]) => h('option', { value: code, selected: code === selected }, label)));
}

// The caller's default address's country, when signed in and one is saved.
export async function defaultCountry(signedIn) {
  if (!signedIn) return null;
  try {
    const book = await api('/api/v1/me/addresses');
    const def = book.find((a) => a.is_default);
    return def ? def.country : null;
  } catch {
    return null;
  }
}

export function quote({ country, speed, coupon } = {}) {
  return api('/api/v1/checkout/quote', {
    method: 'POST',
    json: { country, shipping_speed: speed || undefined, coupon_code: coupon || undefined },
  });
}

const SPEEDS = { standard: 'Standard', express: 'Express' };
export const speedLabel = (speed) => SPEEDS[speed] || speed.replace(/_/g, ' ');

function taxText(q) {
  if (q.tax.mode === 'inclusive') return `incl. ${q.tax.name} ${(q.tax.rate_ppm / 10000).toLocaleString()} %`;
  if (q.tax.mode === 'exclusive') return `${q.tax.name} ${(q.tax.rate_ppm / 10000).toLocaleString()} %`;
  return 'Tax';
}

// A <dl> of goods, discounts, shipping, tax, duty and the total; tax included in prices is
// shown as information, not added.
export function totalsList(q) {
  const row = (id, label, value) => [h('dt', {}, label), h('dd', { id, class: 'num' }, value)];
  return h('dl', { class: 'totals' },
    row('totals-goods', 'Items', money(q.goods_minor, q.currency)),
    q.discounts.map((d) => row(`totals-discount-${d.promotion_id}`, d.code ? `Coupon ${d.code}` : d.name,
      `−${money(d.discount_minor, q.currency)}`)),
    row('totals-shipping', `Shipping (${speedLabel(q.shipping_speed)})`, q.shipping_minor ? money(q.shipping_minor, q.currency) : 'Free'),
    row('totals-tax', taxText(q), q.tax.mode === 'none' ? money(0, q.currency) : money(q.tax_minor, q.currency)),
    q.duty_minor ? row('totals-duty', 'Customs duty', money(q.duty_minor, q.currency)) : null,
    row('totals-total', 'Total', h('strong', {}, money(q.total_minor, q.currency))));
}

export function quoteProblemText(err) {
  const code = err.problem && err.problem.code;
  const texts = {
    no_shipping_option: 'We cannot ship this order to that country.',
    coupon_unknown: 'That coupon code does not exist.',
    coupon_expired: 'That coupon has expired.',
    coupon_not_started: 'That coupon is not valid yet.',
    coupon_min_spend: 'Your order does not reach that coupon\'s minimum spend.',
    coupon_exhausted: 'That coupon has been used up.',
    coupon_customer_limit: 'You have already used that coupon.',
    coupon_currency: 'That coupon is for another currency.',
  };
  return texts[code] || err.message;
}
