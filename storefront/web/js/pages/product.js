import { api } from '../api.js';
import { addToCart, cartProblemText } from '../cart_api.js';
import { attributionFor, track } from '../events.js';
import { categories } from '../listing.js';
import { recStrip } from '../recs.js';
import { currentUser } from '../session.js';
import {
  announce, clear, dateText, errorNotice, field, h, imageFor, money, notice, setTitle, stars, stockText,
} from '../ui.js';

export async function render(view, { match }) {
  const id = match[0];
  let p;
  try {
    p = await api(`/api/v1/products/${encodeURIComponent(id)}`);
  } catch (err) {
    setTitle('Product not found');
    view.append(h('h1', {}, err.status === 404 ? 'Product not found' : 'Product'),
      err.status === 404 ? notice('info', 'This product does not exist or is no longer sold.', null, h('a', { href: '/' }, 'Back to the home page')) : errorNotice(err));
    return;
  }
  setTitle(p.title);
  const attribution = attributionFor(p.id);
  track('product_view', { product_id: p.id, category_id: p.category && p.category.id, search_id: attribution.search_id, rec_id: attribution.rec_id, props: { source: attribution.source || 'direct' } });

  const available = p.stock ? p.stock.available : 0;
  const crumbs = (p.category && p.category.path ? p.category.path.split('/') : []);
  const names = new Map((await categories()).map((c) => [c.slug, c.name]));
  const status = h('div', { class: 'buy-status', role: 'status', 'aria-live': 'polite' });
  const qty = h('input', { type: 'number', id: 'qty', name: 'quantity', min: 1, max: Math.max(1, available), value: 1, inputmode: 'numeric', required: true });
  const addBtn = h('button', { type: 'submit', class: 'btn btn-primary', id: 'add-to-cart', disabled: available <= 0 }, available > 0 ? 'Add to cart' : 'Sold out');
  const buy = h('form', { class: 'buy', 'aria-label': 'Add to cart' },
    available > 0 ? field('Quantity', qty) : null, addBtn, status);
  const wish = currentUser() ? wishButton(p, status) : null;
  buy.addEventListener('submit', async (event) => {
    event.preventDefault();
    const quantity = Number.parseInt(qty.value, 10);
    if (!Number.isInteger(quantity) || quantity < 1) {
      clear(status, notice('error', 'Please choose a quantity of at least 1.'));
      qty.focus();
      return;
    }
    addBtn.disabled = true;
    try {
      await addToCart(p.id, quantity, attribution);
      clear(status, notice('success', `Added ${quantity} × ${p.title} to your cart.`, null, h('a', { href: '/cart', class: 'btn btn-secondary' }, 'View cart')));
      announce('Added to cart');
    } catch (err) {
      clear(status, notice('error', cartProblemText(err)));
    } finally {
      addBtn.disabled = available <= 0;
    }
  });

  const similar = h('section', { id: 'similar', class: 'strip' });
  const together = h('section', { id: 'bought-together', class: 'strip' });
  const reviews = h('section', { id: 'reviews', class: 'reviews', 'aria-labelledby': 'reviews-h' });
  view.append(
    h('nav', { class: 'breadcrumbs', 'aria-label': 'Breadcrumb' }, h('ol', {},
      h('li', {}, h('a', { href: '/' }, 'Home')),
      crumbs.map((slug) => h('li', {}, h('a', { href: `/c/${encodeURIComponent(slug)}` }, names.get(slug) || slug.replace(/-/g, ' ')))))),
    h('article', { class: 'product' },
      h('div', { class: 'gallery' }, gallery(p)),
      h('div', { class: 'details' },
        h('h1', {}, p.title),
        p.brand ? h('p', { class: 'brand muted' }, 'by ', p.brand) : null,
        h('p', {}, stars(p.rating_avg, p.rating_count)),
        h('p', { class: 'price', id: 'price' }, money(p.price_minor, p.currency)),
        h('p', { class: `stock ${available > 0 ? 'in' : 'out'}`, id: 'stock' }, available > 0 ? `${stockText(available)} — ${available} available` : 'Sold out'),
        buy,
        wish,
        p.description ? h('div', { class: 'description' }, h('h2', {}, 'About this product'), h('p', {}, p.description)) : null,
        attributes(p.attributes))),
    together, similar, reviews);

  await Promise.all([
    recStrip(together, 'Bought together', [{ url: `/api/v1/recommendations/products/${p.id}/bought-together?k=6`, surface: 'bought_together' }], { k: 6 }),
    recStrip(similar, 'Similar products', [
      { url: `/api/v1/recommendations/products/${p.id}/similar?k=6`, surface: 'similar' },
      { products: `/api/v1/products?category=${encodeURIComponent(p.category.id)}&limit=7&sort=rating`, exclude: p.id },
    ], { k: 6 }),
    renderReviews(reviews, p),
  ]);
  const sameCard = similar.querySelector(`[data-product-id="${p.id}"]`);
  if (sameCard && !similar.dataset.recId) sameCard.remove();
}

function gallery(p) {
  const local = (p.image_urls || []).filter((u) => typeof u === 'string' && u.startsWith('/') && !u.startsWith('//'));
  const main = h('img', { src: imageFor(p), alt: p.title, class: 'main-img', width: 600, height: 600 });
  if (local.length < 2) return main;
  return [main, h('ul', { class: 'thumbs', 'aria-label': 'More pictures' }, local.map((url, i) => {
    const btn = h('button', { type: 'button', class: 'thumb', 'aria-label': `Show picture ${i + 1}` }, h('img', { src: url, alt: '', width: 80, height: 80 }));
    btn.addEventListener('click', () => {
      main.src = url;
    });
    return h('li', {}, btn);
  }))];
}

function attributes(attrs) {
  const entries = Object.entries(attrs || {});
  if (!entries.length) return null;
  return h('div', { class: 'attributes' }, h('h2', {}, 'Details'),
    h('dl', {}, entries.map(([k, v]) => [h('dt', {}, k.replace(/_/g, ' ')), h('dd', {}, typeof v === 'boolean' ? (v ? 'Yes' : 'No') : String(v))])));
}

async function renderReviews(section, p) {
  section.append(h('h2', { id: 'reviews-h' }, 'Reviews'));
  const listEl = h('div', { class: 'review-list' });
  section.append(listEl);
  const load = async () => {
    try {
      const data = await api(`/api/v1/products/${p.id}/reviews?limit=20`);
      clear(listEl,
        h('p', {}, stars(data.rating_avg, data.rating_count)),
        data.data.length
          ? h('ul', { class: 'reviews-ul' }, data.data.map((r) => h('li', { class: 'review' },
            h('p', { class: 'review-head' }, h('span', { class: 'stars', 'aria-label': `${r.rating} out of 5` }, '★'.repeat(r.rating) + '☆'.repeat(5 - r.rating)), ' ', h('strong', {}, r.title || '')),
            r.body ? h('p', {}, r.body) : null,
            h('p', { class: 'muted small' }, `${r.author || 'A customer'} · ${dateText(r.created_at)}`))))
          : h('p', { class: 'muted' }, 'No reviews yet. Be the first to write one.'));
    } catch (err) {
      clear(listEl, errorNotice(err, 'Reviews'));
    }
  };
  await load();
  if (!currentUser()) {
    section.append(h('p', {}, h('a', { href: `/signin?next=${encodeURIComponent(location.pathname)}` }, 'Sign in to write a review'), '.'));
    return;
  }
  const rating = h('select', { id: 'review-rating', required: true },
    h('option', { value: '' }, 'Choose…'), [5, 4, 3, 2, 1].map((n) => h('option', { value: n }, `${n} star${n > 1 ? 's' : ''}`)));
  const title = h('input', { id: 'review-title', maxlength: 200 });
  const body = h('textarea', { id: 'review-body', rows: 4, maxlength: 5000 });
  const msg = h('div', { role: 'status', 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Post review');
  const formEl = h('form', { class: 'review-form', 'aria-labelledby': 'write-h' },
    h('h3', { id: 'write-h' }, 'Write a review'),
    field('Rating', rating), field('Title (optional)', title), field('Your review (optional)', body), submit, msg);
  formEl.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!rating.value) {
      clear(msg, notice('error', 'Please choose a rating.'));
      rating.focus();
      return;
    }
    submit.disabled = true;
    try {
      await api(`/api/v1/products/${p.id}/reviews`, { method: 'POST', json: { rating: Number(rating.value), title: title.value, body: body.value } });
      clear(msg, notice('success', 'Thank you! Your review is posted.'));
      formEl.reset();
      await load();
    } catch (err) {
      clear(msg, notice('error', err.status === 409 ? 'You have already reviewed this product.' : err.message));
    } finally {
      submit.disabled = false;
    }
  });
  section.append(formEl);
}

// Save for later (signed-in shoppers): the shop writes a wishlist_add event the recommenders
// may weight; the browser sends nothing of its own.
function wishButton(p, status) {
  const button = h('button', { type: 'button', class: 'btn btn-secondary', id: 'save-to-wishlist' }, 'Save to wishlist');
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await api(`/api/v1/me/wishlist/${encodeURIComponent(p.id)}`, { method: 'PUT' });
      button.textContent = 'Saved to wishlist';
      clear(status, notice('success', `Saved ${p.title} to your wishlist.`, null, h('a', { href: '/wishlist' }, 'View wishlist')));
    } catch (err) {
      button.disabled = false;
      clear(status, notice('error', 'It could not be saved.', err.message));
    }
  });
  return button;
}
