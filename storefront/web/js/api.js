// The only way pages talk to the shop: its public JSON API, from the browser.
import { clearAuth, getToken, sessionId } from './session.js';

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    // An unknown route answers 404 with the bare "Not Found" detail; a missing resource
    // names itself ("Product 9 does not exist"). 405 means the path exists without that verb.
    this.missing =
      status === 405 || (status === 404 && (!problem || !problem.detail || problem.detail === 'Not Found'));
    this.offline = status === 0;
  }

  get type() {
    return String(this.problem.type || '');
  }
}

export async function api(path, { method = 'GET', json, form, headers = {}, signal } = {}) {
  const init = { method, headers: { Accept: 'application/json', 'X-Session-Id': sessionId(), ...headers }, signal };
  const token = getToken();
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  } else if (form) {
    init.body = new URLSearchParams(form);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError(0, { title: 'Offline', detail: 'The shop could not be reached. Check your connection and try again.' });
  }
  const type = response.headers.get('content-type') || '';
  let body = null;
  if (response.status !== 204 && type.includes('json')) {
    try {
      body = await response.json();
    } catch {
      body = null;
    }
  }
  if (!response.ok) {
    if (response.status === 401 && token) {
      clearAuth();
      document.dispatchEvent(new CustomEvent('auth:changed'));
    }
    throw new ApiError(response.status, body);
  }
  return body;
}

export function qs(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    if (Array.isArray(value)) value.forEach((v) => search.append(key, v));
    else search.append(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

const productCache = new Map();
export function getProduct(id) {
  if (!productCache.has(id)) {
    const pending = api(`/api/v1/products/${encodeURIComponent(id)}`).catch((err) => {
      productCache.delete(id);
      throw err;
    });
    productCache.set(id, pending);
  }
  return productCache.get(id);
}
