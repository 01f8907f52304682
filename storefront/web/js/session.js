// The anonymous session id and the signed-in user, kept in localStorage.
const SID_KEY = 'sl.sid';
const TOKEN_KEY = 'sl.token';
const USER_KEY = 'sl.user';

function randomId(bytes = 18) {
  const raw = new Uint8Array(bytes);
  crypto.getRandomValues(raw);
  let text = '';
  for (const b of raw) text += String.fromCharCode(b);
  // base64url: the server accepts [A-Za-z0-9_-]{16,64}
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function store() {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

const memory = {};
function read(key) {
  const s = store();
  return s ? s.getItem(key) : memory[key] ?? null;
}
function write(key, value) {
  const s = store();
  if (value === null) {
    if (s) s.removeItem(key);
    delete memory[key];
  } else if (s) {
    s.setItem(key, value);
  } else {
    memory[key] = value;
  }
}

export function sessionId() {
  let sid = read(SID_KEY);
  if (!sid || !/^[A-Za-z0-9_-]{16,64}$/.test(sid)) {
    sid = randomId();
    write(SID_KEY, sid);
  }
  return sid;
}

export function newSession() {
  write(SID_KEY, randomId());
}

export function getToken() {
  return read(TOKEN_KEY);
}

export function setAuth(token, user) {
  write(TOKEN_KEY, token);
  write(USER_KEY, user ? JSON.stringify(user) : null);
}

export function currentUser() {
  const raw = read(USER_KEY);
  if (!raw || !getToken()) return null;
  try {
    return JSON.parse(raw);
  } catch {
    return null;
  }
}

export function clearAuth() {
  write(TOKEN_KEY, null);
  write(USER_KEY, null);
}
