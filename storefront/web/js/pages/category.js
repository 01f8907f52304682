import { api, qs } from '../api.js';
import { track } from '../events.js';
import {
  PAGE_SIZE, activeFilters, categories, facetsPanel, pagination, readFilters, resultsList, sortControl,
} from '../listing.js';
import { errorNotice, h, notice, setTitle } from '../ui.js';

const PRODUCT_SORTS = [
  ['id', 'Featured'],
  ['price_asc', 'Price: low to high'],
  ['price_desc', 'Price: high to low'],
  ['newest', 'Newest'],
  ['rating', 'Top rated'],
];

// Facet counts computed in the browser from up to 100 products, used while search is not up.
function localFacets(products) {
  const brands = new Map();
  let inStock = 0;
  for (const p of products) {
    if (p.brand) brands.set(p.brand, (brands.get(p.brand) || 0) + 1);
    if (p.stock && p.stock.available > 0) inStock += 1;
  }
  const prices = products.map((p) => p.price_minor).sort((a, b) => a - b);
  const price = [];
  if (prices.length > 1) {
    const bounds = [0, 2500, 5000, 10000, 20000, 50000, 100000];
    for (let i = 0; i < bounds.length; i += 1) {
      const lo = bounds[i];
      const hi = bounds[i + 1];
      const count = prices.filter((x) => x >= lo && (hi === undefined || x < hi)).length;
      if (count) price.push({ value: hi === undefined ? `${lo}-*` : `${lo}-${hi - 1}`, count });
    }
  }
  return {
    brand: [...brands].sort((a, b) => b[1] - a[1]).map(([value, count]) => ({ value, count })),
    price,
    in_stock: [{ value: true, count: inStock }],
  };
}

function asHit(p) {
  return { ...p, product_id: p.id, available: p.stock ? p.stock.available : undefined };
}

export async function render(view, { params, match, navigate }) {
  const slug = match[0];
  const base = `/c/${encodeURIComponent(slug)}`;
  const cats = await categories();
  const cat = cats.find((c) => c.slug === slug);
  if (!cat) {
    setTitle('Category not found');
    view.append(h('h1', {}, 'Category not found'), notice('info', 'We could not find that category.', null, h('a', { href: '/' }, 'Back to the home page')));
    return;
  }
  setTitle(cat.name);
  track('category_view', { category_id: cat.id, props: { slug } });
  const crumbs = cat.path.split('/').map((s) => cats.find((c) => c.slug === s)).filter(Boolean);
  view.append(
    h('nav', { class: 'breadcrumbs', 'aria-label': 'Breadcrumb' }, h('ol', {},
      h('li', {}, h('a', { href: '/' }, 'Home')),
      crumbs.map((c) => h('li', {}, c.slug === slug ? h('span', { 'aria-current': 'page' }, c.name) : h('a', { href: `/c/${encodeURIComponent(c.slug)}` }, c.name))))),
    h('h1', {}, cat.name));
  const children = cats.filter((c) => c.parent_id === cat.id);
  if (children.length) {
    view.append(h('ul', { class: 'chips', 'aria-label': 'Subcategories' }, children.map((c) => h('li', {}, h('a', { class: 'chip', href: `/c/${encodeURIComponent(c.slug)}` }, c.name)))));
  }
  const filters = { ...readFilters(params), category: slug };
  const page = Math.max(1, Number.parseInt(params.get('page') || '1', 10) || 1);
  const cursor = params.get('cursor');

  let hits;
  let facets;
  let total;
  let nextCursor;
  let sorts = PRODUCT_SORTS;
  const list = {};
  try {
    // Search first (facets with counts over the whole category) …
    const data = await api(`/api/v1/search${qs({ ...filters, cursor, limit: PAGE_SIZE })}`);
    hits = data.hits || [];
    facets = data.facets || {};
    total = data.total;
    nextCursor = data.next_cursor;
    sorts = [['relevance', 'Featured'], ...PRODUCT_SORTS.slice(1)];

  } catch (err) {
    // … and the plain product listing while search is not there (or refuses an empty query).
    try {
      const sort = filters.sort && PRODUCT_SORTS.some(([v]) => v === filters.sort) ? filters.sort : 'id';
      const [pageData, all] = await Promise.all([
        api(`/api/v1/products${qs({ ...filters, sort, cursor, limit: PAGE_SIZE })}`),
        api(`/api/v1/products${qs({ category: slug, limit: 100 })}`),
      ]);
      hits = (pageData.data || []).map(asHit);
      facets = localFacets(all.data || []);
      nextCursor = pageData.next_cursor;
    } catch (err2) {
      view.append(errorNotice(err2 || err, 'This category'));
      return;
    }
  }
  const countText = total !== undefined ? `${total} ${total === 1 ? 'product' : 'products'}` : `${hits.length}${nextCursor ? '+' : ''} products`;
  view.append(h('p', { class: 'summary', id: 'result-count' }, countText));
  const currency = hits[0] && hits[0].currency;
  const panel = await facetsPanel(facets, { base, params, filters, navigate, hideCategory: true, currency });
  const results = h('section', { class: 'results-col', 'aria-labelledby': 'result-count' });
  view.append(h('div', { class: 'listing' }, panel, results));
  const chips = activeFilters(filters, { base, params, hideCategory: true, currency });
  if (chips) results.append(chips);
  if (!hits.length) {
    results.append(notice('info', 'No products match these filters.', null, h('a', { href: base }, 'Clear all filters')));
    return;
  }
  results.append(
    h('div', { class: 'results-bar' }, sortControl(filters.sort || sorts[0][0], { base, params, navigate, options: sorts })),
    resultsList(hits, { page, list }),
    pagination({ base, params, page, nextCursor }),
  );
}
