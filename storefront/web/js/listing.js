// Result listings shared by search and category pages: facets, filters, sort, pagination.
import { api, qs } from './api.js';
import { clear, h, highlighted, money, productCard } from './ui.js';

export const PAGE_SIZE = 12;

export const SORTS = [
  ['relevance', 'Best match'],
  ['price_asc', 'Price: low to high'],
  ['price_desc', 'Price: high to low'],
  ['newest', 'Newest'],
  ['rating', 'Top rated'],
];

export function readFilters(params) {
  return {
    category: params.get('category') || undefined,
    brand: params.getAll('brand'),
    price_min: params.get('price_min') || undefined,
    price_max: params.get('price_max') || undefined,
    in_stock: params.get('in_stock') || undefined,
    sort: params.get('sort') || undefined,
  };
}

export function hasFilters(f, { ignoreCategory = false } = {}) {
  return Boolean((!ignoreCategory && f.category) || f.brand.length || f.price_min || f.price_max || f.in_stock);
}

let categoriesPromise;
export function categories() {
  if (!categoriesPromise) {
    categoriesPromise = api('/api/v1/categories').then((d) => d.data || []).catch(() => {
      categoriesPromise = undefined;
      return [];
    });
  }
  return categoriesPromise;
}

// Cursor pages: remember which cursor opened page n of a listing so "Previous" works.
function cursorKey(base, params) {
  const p = new URLSearchParams(params);
  p.delete('cursor');
  p.delete('page');
  return `sl.cursors:${base}?${p.toString()}`;
}
function rememberCursor(base, params, page, cursor) {
  try {
    const key = cursorKey(base, params);
    const map = JSON.parse(sessionStorage.getItem(key) || '{}');
    map[page] = cursor;
    sessionStorage.setItem(key, JSON.stringify(map));
  } catch {
    /* ignore */
  }
}
function cursorFor(base, params, page) {
  try {
    return JSON.parse(sessionStorage.getItem(cursorKey(base, params)) || '{}')[page];
  } catch {
    return undefined;
  }
}

export function hrefWith(base, params, changes) {
  const p = new URLSearchParams(params);
  p.delete('cursor');
  p.delete('page');
  for (const [key, value] of Object.entries(changes)) {
    if (key === 'brand:toggle') {
      const brands = p.getAll('brand');
      p.delete('brand');
      const next = brands.includes(value) ? brands.filter((b) => b !== value) : [...brands, value];
      next.forEach((b) => p.append('brand', b));
    } else if (value === undefined || value === null || value === '') {
      p.delete(key);
    } else {
      p.set(key, value);
    }
  }
  const text = p.toString();
  return text ? `${base}?${text}` : base;
}

export function parsePriceFacet(item) {
  const v = item.value;
  if (v && typeof v === 'object') {
    return { min: v.from ?? v.min ?? v.gte, max: v.to ?? v.max ?? v.lt };
  }
  if (item.from !== undefined || item.to !== undefined) return { min: item.from, max: item.to };
  const m = String(v).match(/^\s*(\*|\d+)?\s*(?:-|\.\.|to|_|:)\s*(\*|\d+)?\s*$/);
  if (m) {
    const num = (x) => (x === undefined || x === '*' ? undefined : Number(x));
    return { min: num(m[1]), max: num(m[2]) };
  }
  const plus = String(v).match(/^\s*(\d+)\s*\+\s*$/);
  if (plus) return { min: Number(plus[1]), max: undefined };
  return null;
}

function priceLabel(range, currency) {
  if (range.min !== undefined && range.max !== undefined) return `${money(range.min, currency)} – ${money(range.max, currency)}`;
  if (range.min !== undefined) return `${money(range.min, currency)} and up`;
  if (range.max !== undefined) return `Under ${money(range.max, currency)}`;
  return 'Any price';
}

function facetGroup(title, id, options) {
  if (!options.length) return null;
  return h('fieldset', { class: 'facet', id: `facet-${id}` },
    h('legend', {}, title),
    h('ul', {}, options.map((o) => {
      const inputId = `f-${id}-${o.key.replace(/[^A-Za-z0-9_-]/g, '_')}`;
      const box = h('input', { type: 'checkbox', id: inputId, checked: o.checked });
      box.addEventListener('change', () => o.go());
      return h('li', {}, box, h('label', { for: inputId }, o.label, ' ', h('span', { class: 'count' }, `(${o.count})`)));
    })));
}

// Facet sidebar. `base` is the page path (/search or /c/slug); navigate re-renders it.
export async function facetsPanel(facets, { base, params, filters, navigate, hideCategory, currency = 'EUR' }) {
  const cats = await categories();
  const catName = (value) => {
    const c = cats.find((x) => String(x.id) === String(value) || x.slug === String(value));
    return c ? c.name : String(value);
  };
  const go = (changes) => () => navigate(hrefWith(base, params, changes));
  const groups = [];
  if (!hideCategory && facets.category) {
    groups.push(facetGroup('Category', 'category', facets.category.filter((f) => f.count > 0).map((f) => {
      const checked = filters.category !== undefined && String(filters.category) === String(f.value);
      return { key: String(f.value), label: f.label || catName(f.value), count: f.count, checked, go: go({ category: checked ? undefined : f.value }) };
    })));
  }
  if (facets.brand) {
    groups.push(facetGroup('Brand', 'brand', facets.brand.filter((f) => f.count > 0 && f.value !== '').map((f) => ({
      key: String(f.value), label: f.label || String(f.value), count: f.count,
      checked: filters.brand.includes(String(f.value)), go: go({ 'brand:toggle': String(f.value) }),
    }))));
  }
  if (facets.price) {
    groups.push(facetGroup('Price', 'price', facets.price.filter((f) => f.count > 0).map((f) => {
      const range = parsePriceFacet(f) || {};
      const min = range.min !== undefined ? String(range.min) : undefined;
      const max = range.max !== undefined ? String(range.max) : undefined;
      const checked = (filters.price_min || undefined) === min && (filters.price_max || undefined) === max && Boolean(min || max);
      const label = min !== undefined || max !== undefined ? priceLabel(range, currency) : f.label || String(f.value);
      return { key: `${min}-${max}`, label, count: f.count, checked,
        go: go(checked ? { price_min: undefined, price_max: undefined } : { price_min: min, price_max: max }) };
    })));
  }
  if (facets.in_stock) {
    const yes = facets.in_stock.find((f) => f.value === true || String(f.value) === 'true' || f.value === 1);
    if (yes) {
      const checked = filters.in_stock === 'true';
      groups.push(facetGroup('Availability', 'in_stock', [{ key: 'yes', label: 'In stock only', count: yes.count, checked, go: go({ in_stock: checked ? undefined : 'true' }) }]));
    }
  }
  const shown = groups.filter(Boolean);
  if (!shown.length) return h('div', { class: 'facets-none' });
  return h('aside', { class: 'facets', 'aria-label': 'Filters' }, h('h2', { class: 'facets-title' }, 'Filter'), shown);
}

export function activeFilters(filters, { base, params, hideCategory, catLabel, currency = 'EUR' }) {
  const chips = [];
  if (filters.category && !hideCategory) chips.push([`Category: ${catLabel ? catLabel(filters.category) : filters.category}`, { category: undefined }]);
  filters.brand.forEach((b) => chips.push([`Brand: ${b}`, { 'brand:toggle': b }]));
  if (filters.price_min || filters.price_max) {
    chips.push([`Price: ${priceLabel({ min: filters.price_min ? Number(filters.price_min) : undefined, max: filters.price_max ? Number(filters.price_max) : undefined }, currency)}`, { price_min: undefined, price_max: undefined }]);
  }
  if (filters.in_stock === 'true') chips.push(['In stock only', { in_stock: undefined }]);
  if (!chips.length) return null;
  return h('ul', { class: 'chips active-filters', 'aria-label': 'Active filters' },
    chips.map(([label, change]) => h('li', {}, h('a', { class: 'chip chip-active', href: hrefWith(base, params, change), 'aria-label': `Remove filter ${label}` }, label, h('span', { 'aria-hidden': 'true' }, ' ×')))));
}

export function sortControl(current, { base, params, navigate, options = SORTS }) {
  const select = h('select', { id: 'sort' }, options.map(([value, label]) => h('option', { value, selected: value === current }, label)));
  select.addEventListener('change', () => navigate(hrefWith(base, params, { sort: select.value === options[0][0] ? undefined : select.value })));
  return h('div', { class: 'sort' }, h('label', { for: 'sort' }, 'Sort by '), select);
}

export function resultsList(hits, { page, list }) {
  const offset = (page - 1) * PAGE_SIZE;
  return h('ol', { class: 'cards results', start: offset + 1 }, hits.map((hit, i) => {
    const titleNodes = hit.highlights && hit.highlights.title ? highlighted(hit.highlights.title, hit.title) : null;
    return productCard({ ...hit, id: hit.product_id ?? hit.id }, { position: offset + i, list, titleNodes });
  }));
}

export function pagination({ base, params, page, nextCursor }) {
  const links = [];
  if (page > 1) {
    const prev = page - 1;
    const cursor = prev > 1 ? cursorFor(base, params, prev) : undefined;
    links.push(h('a', { class: 'btn btn-secondary', rel: 'prev', href: hrefWith(base, params, prev > 1 && cursor ? { cursor, page: prev } : {}) }, '← Previous'));
  }
  links.push(h('span', { class: 'page-no', 'aria-current': 'page' }, `Page ${page}`));
  if (nextCursor) {
    rememberCursor(base, params, page + 1, nextCursor);
    links.push(h('a', { class: 'btn btn-secondary', rel: 'next', href: hrefWith(base, params, { cursor: nextCursor, page: page + 1 }) }, 'Next →'));
  }
  return h('nav', { class: 'pagination', 'aria-label': 'Pages' }, links);
}

export async function emptyHelp(section, { base, params, filters, didYouMean, q, navigate }) {
  const tips = h('ul', { class: 'tips' },
    h('li', {}, 'Check the spelling, or try a more general word.'),
    h('li', {}, 'Search for a brand or a kind of product, like “headphones”.'));
  clear(section, tips);
  if (hasFilters(filters)) {
    section.prepend(h('p', {}, 'Some filters are on. ', h('a', { href: q ? `${base}${qs({ q })}` : base }, 'Show results without filters'), '.'));
  }
  if (didYouMean) {
    section.prepend(h('p', { class: 'did-you-mean' }, 'Did you mean ', h('a', { href: `/search${qs({ q: didYouMean })}` }, didYouMean), '?'));
  }
  const cats = await categories();
  const top = cats.filter((c) => !c.parent_id);
  if (top.length) {
    section.append(h('h3', {}, 'Or browse a category'),
      h('ul', { class: 'chips' }, top.map((c) => h('li', {}, h('a', { class: 'chip', href: `/c/${encodeURIComponent(c.slug)}` }, c.name)))));
  }
  void navigate;
  void params;
}
