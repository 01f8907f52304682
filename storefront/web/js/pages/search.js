import { api, qs } from '../api.js';
import { track } from '../events.js';
import {
  PAGE_SIZE, activeFilters, categories, emptyHelp, facetsPanel, hasFilters, pagination,
  readFilters, resultsList, sortControl,
} from '../listing.js';
import { recStrip } from '../recs.js';
import { announce, clear, errorNotice, h, notice, setTitle } from '../ui.js';

export async function render(view, { params, navigate }) {
  const q = (params.get('q') || '').trim();
  setTitle(q ? `Search: ${q}` : 'Search');
  if (!q) {
    view.append(h('h1', {}, 'Search'), h('p', {}, 'Type what you are looking for in the search box above.'));
    document.getElementById('search-input').focus();
    return;
  }
  const filters = readFilters(params);
  const page = Math.max(1, Number.parseInt(params.get('page') || '1', 10) || 1);
  const heading = h('h1', {}, 'Results for ', h('q', {}, q));
  view.append(heading);
  let data;
  try {
    data = await api(`/api/v1/search${qs({ q, ...filters, cursor: params.get('cursor'), limit: PAGE_SIZE })}`);
  } catch (err) {
    view.append(err.missing ? notice('info', 'Search is not available yet.', 'You can still browse the shop by category.') : errorNotice(err));
    const help = h('section', { class: 'empty-help' });
    view.append(help);
    await emptyHelp(help, { base: '/search', params, filters, q, navigate });
    return;
  }
  const hits = data.hits || [];
  const total = data.total ?? hits.length;
  track('search', {
    query: q,
    search_id: data.search_id,
    props: { total, page, sort: filters.sort || 'relevance', ranker_version: data.ranker_version, filtered: hasFilters(filters) },
  });
  const list = { search_id: data.search_id, query: q };
  view.dataset.searchId = data.search_id || '';
  const summary = h('p', { class: 'summary', id: 'result-count' }, `${total} ${total === 1 ? 'result' : 'results'}`);
  announce(`${total} ${total === 1 ? 'result' : 'results'} for ${q}`);
  view.append(summary);
  if (data.did_you_mean && hits.length) {
    view.append(h('p', { class: 'did-you-mean' }, 'Did you mean ', h('a', { href: `/search${qs({ q: data.did_you_mean })}` }, data.did_you_mean), '?'));
  }
  const cats = await categories();
  const catLabel = (v) => (cats.find((c) => String(c.id) === String(v) || c.slug === String(v)) || { name: v }).name;
  const chips = activeFilters(filters, { base: '/search', params, catLabel, currency: hits[0] && hits[0].currency });
  const facets = await facetsPanel(data.facets || {}, { base: '/search', params, filters, navigate, currency: hits[0] && hits[0].currency });
  const results = h('section', { class: 'results-col', 'aria-labelledby': 'result-count' });
  view.append(h('div', { class: 'listing' }, facets, results));
  if (chips) results.append(chips);
  if (!hits.length) {
    heading.replaceChildren('No results for ', h('q', {}, q));
    const help = h('section', { class: 'empty-help' });
    const popular = h('section', { id: 'zero-popular', class: 'strip' });
    results.append(help, popular);
    await Promise.all([
      emptyHelp(help, { base: '/search', params, filters, didYouMean: data.did_you_mean, q, navigate }),
      recStrip(popular, 'Popular right now', [
        { url: '/api/v1/recommendations/popular?k=4', surface: 'zero_results' },
        { products: '/api/v1/products?sort=rating&limit=4' },
      ], { k: 4 }),
    ]);
    return;
  }
  results.append(
    h('div', { class: 'results-bar' }, sortControl(filters.sort || 'relevance', { base: '/search', params, navigate })),
    resultsList(hits, { page, list }),
    pagination({ base: '/search', params, page, nextCursor: data.next_cursor }),
  );
  void clear;
}
