// Recommendation strips: fetch a list, fill in product details, log impressions and clicks.
import { api, getProduct } from './api.js';
import { track } from './events.js';
import { clear, h, productCard } from './ui.js';

async function withDetails(items) {
  return Promise.all(
    items.map(async (item) => {
      if (item.title && item.price_minor !== undefined && item.image_urls !== undefined) return item;
      try {
        const p = await getProduct(item.product_id);
        return { ...p, ...item, id: item.product_id, title: p.title, price_minor: p.price_minor, currency: p.currency, stock: p.stock, image_urls: p.image_urls };
      } catch {
        return null;
      }
    }),
  );
}

// Try each source in turn; the first that answers with items fills the strip.
// A source is {url, surface} for a recommender, or {products: url} for a plain listing.
export async function recStrip(section, title, sources, { k = 8 } = {}) {
  const heading = h('h2', { id: `${section.id}-h` }, title);
  section.setAttribute('aria-labelledby', heading.id);
  clear(section, heading, h('p', { class: 'muted' }, 'Loading…'));
  for (const source of sources) {
    let items = [];
    let list = {};
    try {
      if (source.products) {
        const data = await api(source.products);
        items = (data.data || []).slice(0, k);
      } else {
        const data = await api(source.url);
        list = { rec_id: data.rec_id, surface: source.surface, model_version: data.model_version };
        items = (await withDetails((data.items || []).slice(0, k))).filter(Boolean);
      }
    } catch {
      continue;
    }
    if (!items.length) continue;
    const ul = h('ul', { class: 'cards cards-strip' });
    items.forEach((item, position) => {
      ul.append(productCard(item, { position, list }));
      if (list.rec_id) {
        track('rec_impression', {
          rec_id: list.rec_id,
          product_id: item.id ?? item.product_id,
          position,
          props: { surface: source.surface, model_version: list.model_version },
        });
      }
    });
    clear(section, heading, ul);
    section.dataset.recId = list.rec_id || '';
    section.dataset.surface = source.surface || 'listing';
    return true;
  }
  section.hidden = true;
  return false;
}
