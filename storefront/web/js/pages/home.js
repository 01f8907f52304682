import { api } from '../api.js';
import { recStrip } from '../recs.js';
import { currentUser } from '../session.js';
import { h, setTitle } from '../ui.js';

export async function render(view) {
  setTitle('');
  const user = currentUser();
  const forYou = h('section', { id: 'for-you', class: 'strip' });
  const again = h('section', { id: 'buy-again', class: 'strip' });
  const trending = h('section', { id: 'trending', class: 'strip' });
  const cats = h('section', { id: 'categories', class: 'strip', 'aria-labelledby': 'cats-h' });
  view.append(
    h('section', { class: 'hero' },
      h('h1', {}, user ? `Welcome back${user.full_name ? `, ${user.full_name.split(' ')[0]}` : ''}` : 'Welcome to storeloop'),
      h('p', {}, 'Find something you like — the shop learns from what you browse.')),
    forYou, again, trending, cats);

  const personal = user
    ? [{ url: `/api/v1/recommendations/users/${encodeURIComponent(user.id)}?k=8`, surface: 'home_user' }]
    : [];
  const strips = [
    recStrip(forYou, user ? 'Recommended for you' : 'Popular right now', [
      ...personal,
      { url: '/api/v1/recommendations/session?k=8', surface: 'home_session' },
      { url: '/api/v1/recommendations/popular?k=8', surface: 'home_popular' },
      { products: '/api/v1/products?sort=rating&limit=8' },
    ]),
    // Consumables bought before and due again; the strip stays hidden when there are none.
    user ? recStrip(again, 'Buy it again', [{ url: `/api/v1/recommendations/users/${encodeURIComponent(user.id)}/buy-again?k=8`, surface: 'home_again' }]) : null,
    recStrip(trending, 'Trending', [
      { url: '/api/v1/recommendations/trending?k=8', surface: 'home_trending' },
      { products: '/api/v1/products?sort=newest&limit=8' },
    ]),
    renderCategories(cats),
  ];
  await Promise.all(strips);
}

async function renderCategories(section) {
  section.append(h('h2', { id: 'cats-h' }, 'Shop by category'));
  try {
    const data = await api('/api/v1/categories');
    const top = (data.data || []).filter((c) => !c.parent_id);
    const ul = h('ul', { class: 'chips' });
    for (const c of top) {
      ul.append(h('li', {}, h('a', { class: 'chip', href: `/c/${encodeURIComponent(c.slug)}` }, c.name)));
      for (const child of (data.data || []).filter((x) => x.parent_id === c.id)) {
        ul.append(h('li', {}, h('a', { class: 'chip chip-sub', href: `/c/${encodeURIComponent(child.slug)}` }, child.name)));
      }
    }
    section.append(top.length ? ul : h('p', { class: 'muted' }, 'No categories yet.'));
  } catch {
    section.append(h('p', { class: 'muted' }, 'Categories could not be loaded.'));
  }
}
