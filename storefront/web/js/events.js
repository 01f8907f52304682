// Browser events, batched and sent with navigator.sendBeacon so they survive page unloads.
// Beacons cannot carry headers, so each event names its session in the body; the sl_session
// cookie and the linked session attribute them to the account after sign-in.
import { sessionId, uuid } from './session.js';

const ENDPOINT = '/api/v1/events';
const FLUSH_MS = 4000;
const MAX_BATCH = 50;
const queue = [];
let sent = 0;

function clean(fields) {
  const out = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || value === null || value === '') continue;
    if (key === 'props') {
      const props = {};
      for (const [k, v] of Object.entries(value)) {
        if (v === undefined || v === null) continue;
        props[k] = typeof v === 'string' ? v.slice(0, 500) : v;
      }
      if (Object.keys(props).length) out.props = props;
    } else if (key === 'query') {
      out.query = String(value).slice(0, 500);
    } else {
      out[key] = value;
    }
  }
  return out;
}

export function track(type, fields = {}) {
  queue.push({
    event_id: uuid(),
    type,
    client_ts: new Date().toISOString(),
    session_id: sessionId(),
    ...clean(fields),
  });
  if (queue.length >= MAX_BATCH) flush();
}

export function flush() {
  while (queue.length) {
    const batch = queue.splice(0, MAX_BATCH);
    // text/plain is a CORS-safelisted type, so the beacon never needs a preflight; the
    // events route reads the body as JSON whatever the content type says.
    const blob = new Blob([JSON.stringify({ events: batch })], { type: 'text/plain;charset=UTF-8' });
    let queued = false;
    try {
      queued = typeof navigator.sendBeacon === 'function' && navigator.sendBeacon(ENDPOINT, blob);
    } catch {
      queued = false;
    }
    if (!queued) {
      fetch(ENDPOINT, {
        method: 'POST',
        body: blob,
        keepalive: true,
        headers: { 'Content-Type': 'application/json', 'X-Session-Id': sessionId() },
      }).catch(() => {});
    }
    sent += batch.length;
  }
}

export function pendingCount() {
  return queue.length;
}

setInterval(flush, FLUSH_MS);
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden') flush();
});
window.addEventListener('pagehide', flush);

// A small hook for tests and the curious: how many events were handed to the browser.
window.storeloopEvents = { flush, pending: pendingCount, sent: () => sent };

// Where a product page was reached from, so its product_view / add_to_cart carry the same
// search_id or rec_id as the click that led there.
const ATTR_KEY = 'sl.attribution';
export function rememberClick(attribution) {
  try {
    sessionStorage.setItem(ATTR_KEY, JSON.stringify({ ...attribution, at: Date.now() }));
  } catch {
    /* storage may be off */
  }
}

export function attributionFor(productId) {
  try {
    const raw = JSON.parse(sessionStorage.getItem(ATTR_KEY) || 'null');
    if (raw && String(raw.product_id) === String(productId) && Date.now() - raw.at < 30 * 60 * 1000) {
      return { search_id: raw.search_id, rec_id: raw.rec_id, source: raw.source };
    }
  } catch {
    /* ignore */
  }
  return {};
}
