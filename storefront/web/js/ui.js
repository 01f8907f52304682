// DOM helpers. Text always goes in through textContent; the only markup taken from the API is
// <mark> in search highlights, rebuilt element by element.
import { rememberClick, track } from './events.js';

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const formatters = new Map();
export function money(minor, currency = 'EUR') {
  if (minor === undefined || minor === null) return '';
  let fmt = formatters.get(currency);
  if (!fmt) {
    try {
      fmt = new Intl.NumberFormat(undefined, { style: 'currency', currency });
    } catch {
      fmt = new Intl.NumberFormat(undefined, { style: 'currency', currency: 'EUR' });
    }
    formatters.set(currency, fmt);
  }
  const digits = fmt.resolvedOptions().maximumFractionDigits;
  return fmt.format(Number(minor) / 10 ** digits);
}

export function dateText(value) {
  if (!value) return '';
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString();
}

const PALETTE = ['#dbe7fb', '#fde2cf', '#d7f0e0', '#f3dcf5', '#fff1c2', '#dff3f6'];
const INK = ['#1d4e9e', '#8a3b0c', '#1e6b3c', '#6c2a78', '#7a5a00', '#1f5f6b'];

// A placeholder image drawn here, so a product without pictures still has a recognisable tile.
export function placeholderImage(title = '', id = 0) {
  const n = Math.abs(Number.parseInt(id, 10) || [...String(title)].reduce((a, c) => a + c.charCodeAt(0), 0));
  const bg = PALETTE[n % PALETTE.length];
  const ink = INK[n % INK.length];
  const initials = String(title)
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((w) => w[0].toUpperCase())
    .join('')
    .replace(/[^A-Z0-9]/g, '') || '?';
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 400">` +
    `<rect width="400" height="400" fill="${bg}"/>` +
    `<circle cx="200" cy="200" r="120" fill="#ffffff" opacity="0.55"/>` +
    `<text x="200" y="235" font-family="system-ui,sans-serif" font-size="110" font-weight="700" ` +
    `text-anchor="middle" fill="${ink}">${initials}</text></svg>`;
  return `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
}

// Only images served by this shop are shown (the page's CSP allows no other host).
export function imageFor(product) {
  const urls = (product && product.image_urls) || (product && product.image_url ? [product.image_url] : []);
  const local = urls.find((u) => typeof u === 'string' && u.startsWith('/') && !u.startsWith('//'));
  return local || placeholderImage(product && product.title, product && (product.id ?? product.product_id));
}

export function img(product, cls = '') {
  const el = h('img', { src: imageFor(product), alt: '', class: cls, loading: 'lazy', width: 400, height: 400 });
  el.addEventListener('error', () => {
    el.src = placeholderImage(product.title, product.id ?? product.product_id);
  }, { once: true });
  return el;
}

function decodeEntities(text) {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#0?39;|&#x27;/g, "'")
    .replace(/&amp;/g, '&');
}

// "Sonic <mark>Wireless</mark> Headphones" → text nodes and <mark> elements, nothing else.
export function highlighted(text, fallback = '') {
  if (!text) return [document.createTextNode(fallback)];
  const nodes = [];
  let inMark = false;
  for (const part of String(text).split(/(<\/?(?:mark|em|b)>)/i)) {
    if (/^<(mark|em|b)>$/i.test(part)) inMark = true;
    else if (/^<\/(mark|em|b)>$/i.test(part)) inMark = false;
    else if (part) {
      const plain = decodeEntities(part.replace(/<[^>]*>/g, ''));
      nodes.push(inMark ? h('mark', {}, plain) : document.createTextNode(plain));
    }
  }
  return nodes;
}

export function announce(message) {
  const el = document.getElementById('status');
  if (!el) return;
  el.textContent = '';
  window.setTimeout(() => {
    el.textContent = message;
  }, 30);
}

let toastTimer;
export function toast(message) {
  const el = document.getElementById('toast');
  if (!el) return;
  el.textContent = message;
  el.hidden = false;
  window.clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => {
    el.hidden = true;
  }, 4000);
}

export function notice(kind, title, detail, ...extra) {
  return h('div', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('p', { class: 'notice-title' }, title),
    detail ? h('p', {}, detail) : null,
    ...extra);
}

export function unavailable(what) {
  return notice('info', `${what} is not available yet.`,
    'This part of the shop is still being set up. Please try again a little later.');
}

export function errorNotice(err, what = 'This page') {
  if (err && err.missing) return unavailable(what);
  if (err && err.offline) return notice('error', 'You appear to be offline.', err.message);
  return notice('error', 'Something went wrong.', (err && err.message) || 'Please try again.');
}

export function stockText(available) {
  if (available === undefined || available === null) return '';
  if (available === true) return 'In stock';
  if (available === false || available <= 0) return 'Sold out';
  if (available <= 5) return `Only ${available} left`;
  return 'In stock';
}

// Five outline stars with a filled layer cut at the rating, in half-star steps (4.5 shows four
// and a half stars, not five). The width is a class, not a style attribute: the CSP allows no
// inline styles.
export function starBar(avg) {
  const halves = Math.max(0, Math.min(10, Math.round(Number(avg) * 2)));
  return h('span', { class: 'stars', 'aria-hidden': 'true', 'data-halves': String(halves) },
    '☆☆☆☆☆',
    h('span', { class: `stars-fill fill-${halves}` }, '★★★★★'));
}

export function stars(avg, count) {
  if (!count) return h('span', { class: 'rating muted' }, 'No reviews yet');
  const rounded = Math.round(avg * 10) / 10;
  return h('span', { class: 'rating', 'aria-label': `Rated ${rounded} out of 5 from ${count} reviews` },
    starBar(avg),
    h('span', { 'aria-hidden': 'true' }, ` ${rounded} (${count})`));
}

// A product tile. `track` describes the list it is in, for click events with positions.
export function productCard(p, { position, list, titleNodes } = {}) {
  const id = p.id ?? p.product_id;
  const href = `/p/${encodeURIComponent(id)}`;
  const available = p.stock ? p.stock.available : p.available;
  const link = h('a', { href, class: 'card-link' }, titleNodes || p.title || `Product ${id}`);
  link.addEventListener('click', () => {
    if (!list) return;
    const click = { product_id: id, position };
    if (list.search_id) {
      track('search_click', { ...click, search_id: list.search_id, query: list.query });
      rememberClick({ product_id: id, search_id: list.search_id, source: 'search' });
    } else if (list.rec_id) {
      track('rec_click', { ...click, rec_id: list.rec_id, props: { surface: list.surface } });
      rememberClick({ product_id: id, rec_id: list.rec_id, source: list.surface || 'rec' });
    }
  });
  const price = p.price_minor !== undefined ? money(p.price_minor, p.currency) : '';
  return h('li', { class: 'card', dataset: { productId: id } },
    img(p, 'card-img'),
    h('div', { class: 'card-body' },
      h('h3', { class: 'card-title' }, link),
      p.brand ? h('p', { class: 'card-brand muted' }, p.brand) : null,
      h('p', { class: 'card-price' }, price),
      available !== undefined ? h('p', { class: `card-stock ${available === false || available <= 0 ? 'out' : ''}` }, stockText(available)) : null));
}

export function setTitle(text) {
  document.title = text ? `${text} · storeloop` : 'storeloop';
}

export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hintEl);
}
