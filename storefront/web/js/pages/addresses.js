// The address book: saved addresses, the default one first; add, make default, delete.
import { api } from '../api.js';
import { countrySelect } from '../pricing.js';
import { currentUser } from '../session.js';
import { announce, clear, errorNotice, field, h, notice, setTitle } from '../ui.js';

export async function render(view) {
  setTitle('Your addresses');
  view.append(h('h1', {}, 'Your addresses'));
  if (!currentUser()) {
    view.append(notice('info', 'Please sign in to see your addresses.', null,
      h('p', {}, h('a', { class: 'btn btn-primary', href: '/signin?next=/account/addresses' }, 'Sign in'))));
    return;
  }
  const msg = h('div', { class: 'address-msg', role: 'status', 'aria-live': 'polite' });
  const list = h('ul', { class: 'address-book', id: 'address-book' });
  view.append(msg, list, addForm(list, msg));
  await draw(list, msg);
}

function lines(a) {
  return [a.name, a.line1, a.line2, `${a.postal_code} ${a.city}`, a.country].filter(Boolean);
}

async function draw(list, msg) {
  let book;
  try {
    book = await api('/api/v1/me/addresses');
  } catch (err) {
    clear(list, errorNotice(err, 'The address book'));
    return;
  }
  if (!book.length) {
    clear(list, h('li', { class: 'empty' }, 'No saved addresses yet.'));
    return;
  }
  clear(list, book.map((a) => {
    const label = a.label || a.line1;
    const makeDefault = h('button', { type: 'button', class: 'btn btn-link', 'aria-label': `Make ${label} the default` }, 'Make default');
    makeDefault.addEventListener('click', async () => {
      try {
        await api(`/api/v1/me/addresses/${a.id}/default`, { method: 'POST' });
        announce(`${label} is now the default address`);
        await draw(list, msg);
      } catch (err) {
        clear(msg, errorNotice(err, 'The address book'));
      }
    });
    const remove = h('button', { type: 'button', class: 'btn btn-link', 'aria-label': `Delete ${label}` }, 'Delete');
    remove.addEventListener('click', async () => {
      try {
        await api(`/api/v1/me/addresses/${a.id}`, { method: 'DELETE' });
        clear(msg, notice('success', `Deleted ${label}.`));
        await draw(list, msg);
      } catch (err) {
        clear(msg, errorNotice(err, 'The address book'));
      }
    });
    return h('li', { class: 'address', dataset: { addressId: a.id } },
      h('p', { class: 'address-label' }, h('strong', {}, label), a.is_default ? h('span', { class: 'badge' }, ' Default') : null),
      h('address', {}, lines(a).map((l, i) => [i ? h('br') : null, l])),
      a.is_default ? null : makeDefault, ' ', remove);
  }));
}

function addForm(list, msg) {
  const input = (id, attrs = {}) => h('input', { id, name: id, ...attrs });
  const label = input('addr-label', { maxlength: 40, placeholder: 'Home, Work…' });
  const name = input('addr-name', { autocomplete: 'name', maxlength: 200, required: true });
  const line1 = input('addr-line1', { autocomplete: 'address-line1', maxlength: 200, required: true });
  const line2 = input('addr-line2', { autocomplete: 'address-line2', maxlength: 200 });
  const postal = input('addr-postal', { autocomplete: 'postal-code', maxlength: 20, required: true });
  const city = input('addr-city', { autocomplete: 'address-level2', maxlength: 100, required: true });
  const country = countrySelect('addr-country', 'DE');
  const makeDefault = input('addr-default', { type: 'checkbox' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save address');
  const form = h('form', { class: 'address-form', novalidate: true, 'aria-labelledby': 'add-address-h' },
    h('h2', { id: 'add-address-h' }, 'Add an address'),
    field('Label (optional)', label), field('Full name', name), field('Street and number', line1),
    field('Address line 2 (optional)', line2),
    h('div', { class: 'row' }, field('Postal code', postal), field('City', city)), field('Country', country),
    h('div', { class: 'field checkbox' }, makeDefault, h('label', { for: makeDefault.id }, 'Use as my default address')),
    submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const invalid = [...form.querySelectorAll('input[required]')].find((el) => !el.value.trim());
    if (invalid) {
      clear(msg, notice('error', `Please fill in “${form.querySelector(`label[for="${invalid.id}"]`).textContent}”.`));
      invalid.focus();
      return;
    }
    submit.disabled = true;
    try {
      await api('/api/v1/me/addresses', {
        method: 'POST',
        json: {
          label: label.value.trim(), name: name.value.trim(), line1: line1.value.trim(),
          line2: line2.value.trim() || null, postal_code: postal.value.trim(), city: city.value.trim(),
          country: country.value, is_default: makeDefault.checked,
        },
      });
      form.reset();
      clear(msg, notice('success', 'Address saved.'));
      await draw(list, msg);
    } catch (err) {
      clear(msg, notice('error', 'The address could not be saved.', err.message));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
