// Signing in, tokens and authenticated requests.
//
// The first sign-in on a phone is online (POST /v1/auth/login): it
// registers the phone as a device and stores, in IndexedDB (db.js), the
// refresh token, the access token and a PBKDF2 verifier of the password.
// Later sign-ins by the same user check the password against the verifier
// on the phone, online or not, so the app opens with no network; the
// tokens are refreshed when the network is back. The refresh token
// rotates: only the newest is kept, and it is stored before it is used.

import { putSession } from './db.js';

const PBKDF2_ITERATIONS = 310000;
/** Refresh the access token when it has less than this left (ms). */
const EXPIRY_MARGIN_MS = 60000;
/** sessionStorage key: the device id whose session this tab unlocked. */
const UNLOCKED_KEY = 'gridsync.unlocked';

/** An error answer of the API: `{code, message}` and the HTTP status. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** Reads an error response into an ApiError. */
export async function apiError(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's page): the status says enough.
  }
  const retryAfter = Number(response.headers.get('Retry-After')) || undefined;
  return new ApiError(response.status, body.code, body.message, retryAfter);
}

/** The API's URL for `path` ("/v1/…"): the same origin as the app. */
function apiUrl(path) {
  return new URL(path, location.origin).href;
}

async function postJson(path, body) {
  const response = await fetch(apiUrl(path), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw await apiError(response);
  return response.json();
}

async function derive(password, salt, iterations) {
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(password), 'PBKDF2', false, [
    'deriveBits',
  ]);
  const bits = await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, key, 256);
  return new Uint8Array(bits);
}

async function makeVerifier(password) {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  return { salt, iterations: PBKDF2_ITERATIONS, hash: await derive(password, salt, PBKDF2_ITERATIONS) };
}

async function checkVerifier(password, verifier) {
  const hash = await derive(password, verifier.salt, verifier.iterations);
  let diff = hash.length ^ verifier.hash.length;
  for (let i = 0; i < hash.length; i++) diff |= hash[i] ^ verifier.hash[i];
  return diff === 0;
}

/** A short name for the device list the admin sees. */
function deviceName() {
  const platform = /Android|iPhone|iPad|HarmonyOS|Windows|Mac OS X|Linux/.exec(navigator.userAgent)?.[0];
  return platform ? `网格通 field app (${platform})` : '网格通 field app';
}

/**
 * The signed-in user of this phone. `session` (null when nobody signed in
 * here) is what db.js stores under auth/session:
 * {username, user_id, device_id, refresh_token, access_token,
 *  access_expires_at, verifier: {salt, iterations, hash}, me}
 * where `me` is the last GET /v1/me answer, as JSON text.
 */
export class Auth {
  constructor(db, session) {
    this.db = db;
    this.session = session;
    this.refreshing = null;
  }

  /** Whether this tab has unlocked the stored session (survives reloads, not a new launch). */
  isUnlocked() {
    return !!this.session && sessionStorage.getItem(UNLOCKED_KEY) === this.session.device_id;
  }

  /** Whether the stored session belongs to another user than `username`. */
  heldByOther(username) {
    return !!this.session && this.session.username !== username.trim();
  }

  /**
   * Signs `username` in: on the phone when this user signed in here
   * before and the password matches, else online (a new device). Throws
   * an ApiError (bad_credentials, rate_limited, …), or an Error with code
   * `offline_unknown` / `offline_wrong` when offline.
   */
  async signIn(username, password) {
    username = username.trim();
    const stored = this.session;
    if (stored && stored.username === username && stored.refresh_token) {
      if (await checkVerifier(password, stored.verifier)) {
        sessionStorage.setItem(UNLOCKED_KEY, stored.device_id);
        return;
      }
      // The password may have been changed on the server: only it can tell.
      if (!navigator.onLine) throw Object.assign(new Error('wrong password'), { code: 'offline_wrong' });
    } else if (!navigator.onLine) {
      throw Object.assign(new Error('unknown offline'), { code: 'offline_unknown' });
    }
    const tokens = await postJson('/v1/auth/login', { username, password, device_name: deviceName() });
    const session = {
      username,
      user_id: tokens.user_id,
      device_id: tokens.device_id,
      refresh_token: tokens.refresh_token,
      access_token: tokens.access_token,
      access_expires_at: Date.now() + tokens.expires_in * 1000,
      verifier: await makeVerifier(password),
      me: stored?.username === username ? stored.me : null,
    };
    await putSession(this.db, session);
    this.session = session;
    sessionStorage.setItem(UNLOCKED_KEY, session.device_id);
  }

  /** The refresh token no longer works: the next sign-in goes online. */
  async expire() {
    this.session = { ...this.session, refresh_token: null, access_token: null };
    await putSession(this.db, this.session);
    this.lock();
  }

  /** Forgets that this tab unlocked the session (sign-out, wipe). */
  lock() {
    sessionStorage.removeItem(UNLOCKED_KEY);
  }

  /** The principal JSON text (GET /v1/me) last fetched, or null. */
  me() {
    return this.session?.me ?? null;
  }

  /** Fetches GET /v1/me and stores it; returns the JSON text. */
  async fetchMe() {
    const response = await this.request('/v1/me');
    if (!response.ok) throw await apiError(response);
    const me = await response.text();
    this.session = { ...this.session, me };
    await putSession(this.db, this.session);
    return me;
  }

  /** A valid access token, refreshed first when (nearly) expired. */
  async accessToken() {
    const s = this.session;
    if (s.access_token && s.access_expires_at - EXPIRY_MARGIN_MS > Date.now()) return s.access_token;
    return this.refresh();
  }

  /** Refreshes the tokens, one refresh at a time. */
  refresh() {
    if (!this.refreshing) {
      this.refreshing = this.doRefresh().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  async doRefresh() {
    let tokens;
    try {
      tokens = await postJson('/v1/auth/refresh', { refresh_token: this.session.refresh_token });
    } catch (error) {
      if (error instanceof ApiError) error.fromRefresh = true;
      throw error;
    }
    // The old refresh token is retired now: keep the new one before anything else.
    this.session = {
      ...this.session,
      refresh_token: tokens.refresh_token,
      access_token: tokens.access_token,
      access_expires_at: Date.now() + tokens.expires_in * 1000,
    };
    await putSession(this.db, this.session);
    return tokens.access_token;
  }

  /**
   * fetch() of an API path with the access token. A 401 `unauthorized` or
   * `token_expired` refreshes the token and tries once more. Throws
   * ApiError on a 401 that remains (`device_revoked` at once) and when the
   * refresh fails (then `fromRefresh` is set; `unauthorized` means: sign in
   * again online). Other answers are returned as they are.
   */
  async request(path, init = {}) {
    for (let attempt = 0; ; attempt++) {
      const token = await this.accessToken();
      const response = await fetch(apiUrl(path), {
        ...init,
        headers: { ...init.headers, Authorization: `Bearer ${token}` },
      });
      if (response.status !== 401) return response;
      const error = await apiError(response);
      if (error.code === 'device_revoked' || attempt > 0) throw error;
      this.session = { ...this.session, access_token: null };
    }
  }
}
