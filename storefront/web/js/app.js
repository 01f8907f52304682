// Entry point: the browser-side router, the header (search box with suggestions, cart count,
// account links) and page views.
import { api, qs } from './api.js';
import { flush, track } from './events.js';
import { currentUser } from './session.js';
import { clear, h, notice, setTitle } from './ui.js';

const routes = [
  [/^\/$/, () => import('./pages/home.js')],
  [/^\/search$/, () => import('./pages/search.js')],
  [/^\/c\/([^/]+)$/, () => import('./pages/category.js')],
  [/^\/p\/([^/]+)$/, () => import('./pages/product.js')],
  [/^\/cart$/, () => import('./pages/cart.js')],
  [/^\/checkout$/, () => import('./pages/checkout.js')],
  [/^\/checkout\/done\/([^/]+)$/, () => import('./pages/orders.js'), 'confirmation'],
  [/^\/orders$/, () => import('./pages/orders.js'), 'list'],
  [/^\/orders\/([^/]+)$/, () => import('./pages/orders.js'), 'detail'],
  [/^\/orders\/([^/]+)\/return$/, () => import('./pages/returns.js'), 'new'],
  [/^\/returns$/, () => import('./pages/returns.js'), 'list'],
  [/^\/membership$/, () => import('./pages/membership.js')],
  [/^\/(signin|signup|account)$/, () => import('./pages/account.js')],
  [/^\/account\/addresses$/, () => import('./pages/addresses.js')],
  [/^\/wishlist$/, () => import('./pages/wishlist.js')],
  [/^\/ops$/, () => import('./pages/ops.js')],
];

const main = document.getElementById('main');
let renderSeq = 0;

export function navigate(url, { replace = false } = {}) {
  const target = new URL(url, location.href);
  if (target.origin !== location.origin) {
    location.href = target.href;
    return;
  }
  if (replace) history.replaceState({}, '', target.pathname + target.search + target.hash);
  else history.pushState({}, '', target.pathname + target.search + target.hash);
  render();
  window.scrollTo(0, 0);
}

async function render() {
  const seq = ++renderSeq;
  closeSuggestions();
  const path = location.pathname.replace(/\/+$/, '') || '/';
  const params = new URLSearchParams(location.search);
  const input = document.getElementById('search-input');
  input.value = path === '/search' ? params.get('q') || '' : '';
  for (const [pattern, load, variant] of routes) {
    const match = path.match(pattern);
    if (!match) continue;
    main.setAttribute('aria-busy', 'true');
    try {
      const page = await load();
      if (seq !== renderSeq) return;
      const view = h('div', { class: 'view' });
      clear(main, view);
      track('page_view', { props: { path: path.slice(0, 200) } });
      await page.render(view, { params, match: match.slice(1).map(decodeURIComponent), variant, navigate });
    } catch (err) {
      console.error(err);
      if (seq === renderSeq) clear(main, notice('error', 'This page could not be shown.', String(err.message || err)));
    } finally {
      main.removeAttribute('aria-busy');
    }
    if (seq === renderSeq) focusHeading();
    return;
  }
  setTitle('Not found');
  clear(main, h('div', { class: 'view' }, h('h1', {}, 'Page not found'),
    h('p', {}, 'We could not find that page. ', h('a', { href: '/' }, 'Go to the home page'), '.')));
  focusHeading();
}

let firstRender = true;
function focusHeading() {
  // Move focus to the new page's heading so screen-reader and keyboard users start there,
  // but not on the very first load (the browser starts at the top already).
  if (firstRender) {
    firstRender = false;
    return;
  }
  const heading = main.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
}

// Same-origin links navigate without reloading; modified clicks and downloads behave normally.
document.addEventListener('click', (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = event.target.closest('a[href]');
  if (!link || link.target || link.hasAttribute('download') || link.dataset.reload !== undefined) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/static/') || url.pathname === '/docs' || url.pathname === '/redoc') return;
  event.preventDefault();
  navigate(url.pathname + url.search + url.hash);
});

window.addEventListener('popstate', render);

// ----- header: account links and cart count -------------------------------------------------

export function refreshAccount() {
  const user = currentUser();
  const account = document.getElementById('nav-account');
  account.textContent = user ? 'Account' : 'Sign in';
  account.setAttribute('href', user ? '/account' : '/signin');
  document.getElementById('nav-ops').parentElement.hidden = !(user && user.role === 'admin');
}

export async function refreshCart() {
  const badge = document.getElementById('cart-count');
  try {
    const cart = await api('/api/v1/cart');
    const count = cart.item_count ?? (cart.items || []).reduce((n, i) => n + i.quantity, 0);
    badge.textContent = String(count);
    badge.setAttribute('aria-label', `${count} ${count === 1 ? 'item' : 'items'}`);
  } catch {
    badge.textContent = '0';
    badge.setAttribute('aria-label', '0 items');
  }
}

document.addEventListener('cart:changed', refreshCart);
document.addEventListener('auth:changed', () => {
  refreshAccount();
  refreshCart();
});

// ----- search box with type-ahead suggestions ------------------------------------------------

const form = document.getElementById('search-form');
const input = document.getElementById('search-input');
const list = document.getElementById('suggestions');
let suggestTimer;
let suggestAbort;
let active = -1;
let suggestionsMissing = false;

function closeSuggestions() {
  list.hidden = true;
  list.replaceChildren();
  input.setAttribute('aria-expanded', 'false');
  input.removeAttribute('aria-activedescendant');
  active = -1;
}

function options() {
  return [...list.querySelectorAll('[role="option"]')];
}

function setActive(index) {
  const opts = options();
  if (!opts.length) return;
  active = (index + opts.length) % opts.length;
  opts.forEach((o, i) => o.setAttribute('aria-selected', String(i === active)));
  input.setAttribute('aria-activedescendant', opts[active].id);
}

function choose(option) {
  const { type, productId, text } = option.dataset;
  closeSuggestions();
  if (type === 'product' && productId) {
    navigate(`/p/${encodeURIComponent(productId)}`);
  } else {
    input.value = text;
    navigate(`/search${qs({ q: text })}`);
  }
}

async function suggest() {
  const q = input.value.trim();
  if (q.length < 2 || suggestionsMissing) {
    closeSuggestions();
    return;
  }
  if (suggestAbort) suggestAbort.abort();
  suggestAbort = new AbortController();
  let data;
  try {
    data = await api(`/api/v1/search/suggest${qs({ q })}`, { signal: suggestAbort.signal });
  } catch (err) {
    if (err && err.missing) suggestionsMissing = true;
    closeSuggestions();
    return;
  }
  if (input.value.trim() !== q || document.activeElement !== input) return;
  const items = (data && data.suggestions) || [];
  list.replaceChildren();
  active = -1;
  items.slice(0, 8).forEach((s, i) => {
    const li = h('li', {
      role: 'option',
      id: `suggestion-${i}`,
      class: `suggestion suggestion-${s.type}`,
      'aria-selected': 'false',
      dataset: { type: s.type, text: s.text, productId: s.product_id ?? '' },
    }, s.type === 'product' ? h('span', { class: 'suggestion-kind' }, 'Product') : null, s.text);
    li.addEventListener('mousedown', (e) => {
      e.preventDefault();
      choose(li);
    });
    list.append(li);
  });
  const open = items.length > 0;
  list.hidden = !open;
  input.setAttribute('aria-expanded', String(open));
}

input.addEventListener('input', () => {
  window.clearTimeout(suggestTimer);
  suggestTimer = window.setTimeout(suggest, 120);
});
input.addEventListener('keydown', (event) => {
  const open = !list.hidden;
  if (event.key === 'ArrowDown' && open) {
    event.preventDefault();
    setActive(active + 1);
  } else if (event.key === 'ArrowUp' && open) {
    event.preventDefault();
    setActive(active - 1);
  } else if (event.key === 'Escape') {
    closeSuggestions();
  } else if (event.key === 'Enter' && open && active >= 0) {
    event.preventDefault();
    choose(options()[active]);
  }
});
input.addEventListener('blur', () => window.setTimeout(closeSuggestions, 150));
form.addEventListener('submit', (event) => {
  event.preventDefault();
  const q = input.value.trim();
  if (!q) {
    input.focus();
    return;
  }
  closeSuggestions();
  navigate(`/search${qs({ q })}`);
});

refreshAccount();
refreshCart();
render();
window.addEventListener('beforeunload', flush);
