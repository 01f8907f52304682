import { api } from '../api.js';
import { clearAuth, currentUser, newSession, setAuth } from '../session.js';
import { announce, clear, field, h, notice, setTitle } from '../ui.js';

function safeNext(params) {
  const next = params.get('next') || '';
  return next.startsWith('/') && !next.startsWith('//') ? next : '/account';
}

export async function signIn(email, password) {
  const token = await api('/api/v1/auth/token', { method: 'POST', form: { username: email, password } });
  setAuth(token.access_token, null);
  const me = await api('/api/v1/me');
  setAuth(token.access_token, me);
  document.dispatchEvent(new CustomEvent('auth:changed'));
  return token;
}

function mergeText(merge) {
  if (!merge) return '';
  const n = merge.merged_items ?? merge.items_merged ?? merge.added ?? merge.merged ?? (Array.isArray(merge.items) ? merge.items.length : undefined);
  if (typeof n === 'number' && n > 0) return ` We kept the ${n} ${n === 1 ? 'item' : 'items'} from your cart.`;
  return ' Your cart is kept.';
}

export async function render(view, { match, params, navigate }) {
  const which = match[0];
  if (which === 'account') return renderAccount(view, navigate);
  const signup = which === 'signup';
  setTitle(signup ? 'Create an account' : 'Sign in');
  const email = h('input', { type: 'email', id: 'email', autocomplete: 'email', required: true, maxlength: 254 });
  const password = h('input', { type: 'password', id: 'password', autocomplete: signup ? 'new-password' : 'current-password', required: true, minlength: signup ? 8 : 1, maxlength: 128 });
  const fullName = h('input', { id: 'full-name', autocomplete: 'name', maxlength: 200 });
  const msg = h('div', { id: 'auth-msg', tabindex: '-1', 'aria-live': 'assertive' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, signup ? 'Create account' : 'Sign in');
  const formEl = h('form', { class: 'auth-form', novalidate: true },
    signup ? field('Full name', fullName) : null,
    field('Email', email),
    field('Password', password, signup ? 'At least 8 characters.' : null),
    msg, submit);
  const other = signup
    ? h('p', {}, 'Already have an account? ', h('a', { href: `/signin?next=${encodeURIComponent(safeNext(params))}` }, 'Sign in'))
    : h('p', {}, 'New here? ', h('a', { href: `/signup?next=${encodeURIComponent(safeNext(params))}` }, 'Create an account'));
  view.append(h('div', { class: 'auth' }, h('h1', {}, signup ? 'Create an account' : 'Sign in'),
    h('p', { class: 'muted' }, 'Your cart and browsing history are kept when you sign in.'), formEl, other));
  formEl.addEventListener('submit', async (event) => {
    event.preventDefault();
    for (const el of [email, password]) {
      if (!el.checkValidity()) {
        el.setAttribute('aria-invalid', 'true');
        clear(msg, notice('error', el === email ? 'Please enter a valid email address.' : signup ? 'The password needs at least 8 characters.' : 'Please enter your password.'));
        el.focus();
        return;
      }
      el.removeAttribute('aria-invalid');
    }
    submit.disabled = true;
    try {
      if (signup) {
        await api('/api/v1/auth/register', { method: 'POST', json: { email: email.value.trim(), password: password.value, full_name: fullName.value.trim() } });
      }
      const token = await signIn(email.value.trim(), password.value);
      announce(`Signed in.${mergeText(token.cart_merge)}`);
      navigate(safeNext(params));
    } catch (err) {
      submit.disabled = false;
      const text = err.status === 401 ? 'That email and password do not match.'
        : err.status === 409 ? 'An account with this email already exists. Try signing in.'
          : err.status === 429 ? 'Too many attempts. Please wait a minute and try again.'
            : err.message;
      clear(msg, notice('error', text));
      msg.focus();
    }
  });
}

async function renderAccount(view, navigate) {
  setTitle('Your account');
  view.append(h('h1', {}, 'Your account'));
  if (!currentUser()) {
    view.append(notice('info', 'You are not signed in.', null, h('p', {}, h('a', { class: 'btn btn-primary', href: '/signin' }, 'Sign in'))));
    return;
  }
  let me;
  try {
    me = await api('/api/v1/me');
  } catch {
    view.append(notice('info', 'Your session has ended. Please sign in again.', null, h('a', { href: '/signin' }, 'Sign in')));
    return;
  }
  const out = h('button', { type: 'button', class: 'btn btn-secondary', id: 'sign-out' }, 'Sign out');
  out.addEventListener('click', () => {
    clearAuth();
    newSession(); // a fresh anonymous session, so the next visitor on this device starts clean
    document.dispatchEvent(new CustomEvent('auth:changed'));
    announce('Signed out');
    navigate('/');
  });
  view.append(h('dl', { class: 'account' },
    h('dt', {}, 'Name'), h('dd', {}, me.full_name || '—'),
    h('dt', {}, 'Email'), h('dd', {}, me.email),
    h('dt', {}, 'Member since'), h('dd', {}, new Date(me.created_at).toLocaleDateString())),
  h('ul', { class: 'links' },
    h('li', {}, h('a', { href: '/orders' }, 'Your orders')),
    h('li', {}, h('a', { href: '/returns' }, 'Your returns')),
    h('li', {}, h('a', { href: '/membership' }, 'Membership')),
    h('li', {}, h('a', { href: '/account/addresses' }, 'Your addresses')),
    h('li', {}, h('a', { href: '/wishlist' }, 'Your wishlist')),
    me.role === 'admin' ? h('li', {}, h('a', { href: '/ops' }, 'Operations')) : null),
  out);
}
