// The wishlist: products saved for later, with their price and whether they are in stock.
import { api } from '../api.js';
import { addToCart, cartProblemText } from '../cart_api.js';
import { currentUser } from '../session.js';
import { clear, errorNotice, h, img, money, notice, setTitle } from '../ui.js';

export async function render(view) {
  setTitle('Your wishlist');
  view.append(h('h1', {}, 'Your wishlist'));
  if (!currentUser()) {
    view.append(notice('info', 'Please sign in to see your wishlist.', null,
      h('p', {}, h('a', { class: 'btn btn-primary', href: '/signin?next=/wishlist' }, 'Sign in'))));
    return;
  }
  const msg = h('div', { class: 'wishlist-msg', role: 'status', 'aria-live': 'polite' });
  const list = h('ul', { class: 'wishlist', id: 'wishlist' });
  view.append(msg, list);
  try {
    draw(list, msg, (await api('/api/v1/me/wishlist')).items);
  } catch (err) {
    clear(list, errorNotice(err, 'The wishlist'));
  }
}

function draw(list, msg, items) {
  if (!items.length) {
    clear(list, h('li', { class: 'empty' }, 'Nothing saved yet. Use “Save to wishlist” on a product.'));
    return;
  }
  clear(list, items.map((item) => {
    const toCart = h('button', { type: 'button', class: 'btn btn-secondary', disabled: !item.in_stock, 'aria-label': `Add ${item.title} to cart` }, item.in_stock ? 'Add to cart' : 'Sold out');
    toCart.addEventListener('click', async () => {
      try {
        await addToCart(item.product_id, 1, { source: 'wishlist' });
        clear(msg, notice('success', `Added ${item.title} to your cart.`));
        document.dispatchEvent(new CustomEvent('cart:changed'));
      } catch (err) {
        clear(msg, notice('error', cartProblemText(err)));
      }
    });
    const remove = h('button', { type: 'button', class: 'btn btn-link', 'aria-label': `Remove ${item.title} from the wishlist` }, 'Remove');
    remove.addEventListener('click', async () => {
      try {
        const next = await api(`/api/v1/me/wishlist/${item.product_id}`, { method: 'DELETE' });
        clear(msg, notice('success', `Removed ${item.title}.`));
        draw(list, msg, next.items);
      } catch (err) {
        clear(msg, errorNotice(err, 'The wishlist'));
      }
    });
    return h('li', { class: 'wish', dataset: { productId: item.product_id } },
      img({ id: item.product_id, title: item.title }, 'thumb-img'),
      h('a', { href: `/p/${item.product_id}` }, item.title),
      h('span', { class: 'price' }, money(item.price_minor, item.currency)),
      toCart, remove);
  }));
}
