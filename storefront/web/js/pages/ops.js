import { api } from '../api.js';
import { currentUser } from '../session.js';
import { dateText, errorNotice, h, money, notice, setTitle } from '../ui.js';

function cell(value) {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : value.toFixed(4);
  if (Array.isArray(value)) return value.join(', ');
  if (typeof value === 'object') return Object.entries(value).map(([k, v]) => `${k}: ${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(4) : typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ');
  if (typeof value === 'string' && /^\d{4}-\d\d-\d\d[T ]\d/.test(value)) return dateText(value);
  return String(value);
}

// A model's training data range ({first, last, interactions}) in words.
function rangeText(range) {
  if (!range || !Object.keys(range).length) return null;
  const first = range.first ? dateText(range.first) : '?';
  const last = range.last ? dateText(range.last) : '?';
  return `${first} – ${last}${range.interactions ? ` (${Number(range.interactions).toLocaleString()} interactions)` : ''}`;
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

// Live click-through (counted as events arrive, no pipeline run needed) and the A/B test.
function liveCtr(live) {
  if (!live) return [];
  const parts = [table(`Live CTR by model version and surface (since ${cell(live.since)})`, live.by_version_surface)];
  const ab = live.ab_test;
  if (ab) {
    parts.push(table(`A/B test: ${Math.round((ab.share || 0) * 100)} % of shoppers on ${ab.challenger_version}${ab.loaded ? '' : ' (not loaded yet)'}`, ab.arms));
    parts.push(keyValues('A/B test result (challenger vs control)', { lift: ab.lift, z: ab.z, p_value: ab.p_value }));
  }
  return parts;
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
  // The marketplace's sellers and what the shop owes each (issue 23); absent on older shops.
  let sellers = null;
  try {
    sellers = (await api('/api/v1/admin/sellers')).data.map((x) => ({
      seller: x.display_name,
      status: x.status,
      commission: `${(x.commission_bps / 100).toFixed(2)} %`,
      products: x.products,
      parcels_to_ship: x.parcels_to_ship,
      sales: money(x.sales_minor, x.currency),
      commission_kept: money(x.commission_minor, x.currency),
      owed: money(x.owed_minor, x.currency),
    }));
  } catch (err) {
    sellers = null;
  }
  const models = (report.models || []).map((m) => ({
    name: m.name,
    version: m.serving_version ?? m.version,
    created_at: m.created_at,
    data_range: rangeText(m.data_range),
    ...Object.fromEntries(Object.entries(m).filter(([k]) => !['name', 'version', 'serving_version', 'created_at', 'data_range'].includes(k))),
  }));
  view.append(
    h('section', { 'aria-labelledby': 'ops-models' }, h('h2', { id: 'ops-models' }, 'Serving models'), table('Models in service and their offline metrics', models)),
    h('section', { 'aria-labelledby': 'ops-search' }, h('h2', { id: 'ops-search' }, 'Search index'), keyValues('Search index', report.search_index)),
    h('section', { 'aria-labelledby': 'ops-ctr' }, h('h2', { id: 'ops-ctr' }, 'Online click-through'), table('Online CTR by surface', report.online_ctr), ...liveCtr(report.online_live)),
    h('section', { 'aria-labelledby': 'ops-runs' }, h('h2', { id: 'ops-runs' }, 'Recent pipeline runs'), table('Recent pipeline runs', report.pipeline_runs)),
    sellers === null ? h('p', { class: 'muted' }, 'Sellers: not available.') : h('section', { 'aria-labelledby': 'ops-sellers', id: 'ops-sellers-section' }, h('h2', { id: 'ops-sellers' }, 'Sellers'), table('Sellers and what the shop owes them', sellers)),
    /^https?:\/\//.test(report.dagster_url || '') ? h('p', {}, h('a', { href: report.dagster_url, rel: 'noopener', target: '_blank', class: 'btn btn-secondary' }, 'Open the Dagster UI')) : h('p', { class: 'muted' }, 'The Dagster UI address is not configured.'));
}
