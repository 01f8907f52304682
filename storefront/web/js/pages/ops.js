import { api } from '../api.js';
import { currentUser } from '../session.js';
import { dateText, errorNotice, h, notice, setTitle } from '../ui.js';

function cell(value) {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : value.toFixed(4);
  if (typeof value === 'object') return Object.entries(value).map(([k, v]) => `${k}: ${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(4) : typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ');
  if (typeof value === 'string' && /^\d{4}-\d\d-\d\dT/.test(value)) return dateText(value);
  return String(value);
}

// Any list of flat-ish objects as a table; the report's shape may grow without page changes.
function table(caption, rows) {
  if (!rows || !rows.length) return h('p', { class: 'muted' }, `${caption}: nothing yet.`);
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return h('div', { class: 'table-wrap' }, h('table', { class: 'ops-table' },
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c.replace(/_/g, ' '))))),
    h('tbody', {}, rows.map((r) => h('tr', {}, cols.map((c) => h('td', {}, cell(r[c]))))))));
}

function keyValues(caption, obj) {
  if (!obj || !Object.keys(obj).length) return h('p', { class: 'muted' }, `${caption}: not available.`);
  return h('div', { class: 'table-wrap' }, h('table', { class: 'ops-table' }, h('caption', {}, caption),
    h('tbody', {}, Object.entries(obj).map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k.replace(/_/g, ' ')), h('td', {}, cell(v)))))));
}

export async function render(view) {
  setTitle('Operations');
  view.append(h('h1', {}, 'Operations'));
  const user = currentUser();
  if (!user || user.role !== 'admin') {
    view.append(notice('info', 'This page is for shop operators.', 'Sign in with an admin account to see it.', h('a', { href: '/signin?next=/ops' }, 'Sign in')));
    return;
  }
  let report;
  try {
    report = await api('/api/v1/admin/ops');
  } catch (err) {
    if (err.status === 403 || err.status === 401) {
      view.append(notice('error', 'Your account cannot see the operations report.'));
    } else if (err.missing) {
      view.append(notice('info', 'The operations report is not available yet.', 'Models, search index and pipeline runs will appear here once the report is set up.'));
    } else {
      view.append(errorNotice(err, 'The operations report'));
    }
    return;
  }
  const models = (report.models || []).map((m) => ({ name: m.name, version: m.version, ...Object.fromEntries(Object.entries(m).filter(([k]) => !['name', 'version'].includes(k))) }));
  view.append(
    h('section', { 'aria-labelledby': 'ops-models' }, h('h2', { id: 'ops-models' }, 'Serving models'), table('Models in service and their offline metrics', models)),
    h('section', { 'aria-labelledby': 'ops-search' }, h('h2', { id: 'ops-search' }, 'Search index'), keyValues('Search index', report.search_index)),
    h('section', { 'aria-labelledby': 'ops-ctr' }, h('h2', { id: 'ops-ctr' }, 'Online click-through'), table('Online CTR by surface', report.online_ctr)),
    h('section', { 'aria-labelledby': 'ops-runs' }, h('h2', { id: 'ops-runs' }, 'Recent pipeline runs'), table('Recent pipeline runs', report.pipeline_runs)),
    /^https?:\/\//.test(report.dagster_url || '') ? h('p', {}, h('a', { href: report.dagster_url, rel: 'noopener', target: '_blank', class: 'btn btn-secondary' }, 'Open the Dagster UI')) : h('p', { class: 'muted' }, 'The Dagster UI address is not configured.'));
}
