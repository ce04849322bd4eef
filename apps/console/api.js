// The console's session and its requests to the API (same origin).
//
// Signing in (POST /v1/auth/login, device_name "console") registers this
// browser tab as a device. Its tokens live in sessionStorage: they survive
// a reload of the tab and end with it. The access token is refreshed
// shortly before it expires and again when a request is answered 401
// (`unauthorized`: expired or unknown token; `token_expired`); a refresh
// that fails, or a revoked device, ends the session. Signing out revokes
// the device, so that its refresh token stops working at once.

const SESSION_KEY = 'gridsync.console.session';
/** Refresh the access token when it has less than this left (ms). */
const EXPIRY_MARGIN_MS = 60000;
export const DEVICE_NAME = 'console';

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

async function postJson(path, body) {
  const response = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw await apiError(response);
  return response.json();
}

/** `path` with the query `params` (entries whose value is empty are left out). */
export function withQuery(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '' || value === false) continue;
    query.set(key, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/** The file name a response's Content-Disposition gives, if any. */
function dispositionName(response) {
  const header = response.headers.get('Content-Disposition') ?? '';
  const star = /filename\*\s*=\s*(?:UTF-8'')?([^;]+)/i.exec(header);
  if (star) {
    try {
      return decodeURIComponent(star[1].trim().replace(/^"|"$/g, ''));
    } catch {
      // Fall through to the plain name.
    }
  }
  const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(header);
  return plain ? plain[1].trim() : null;
}

/** Saves `blob` as a file named `name` through a download link. */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  link.style.display = 'none';
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

/**
 * The signed-in session: {username, user_id, device_id, access_token,
 * refresh_token, expires_at}. `onLost(reason)` is called once when the
 * session cannot go on: reason `session_expired` or `device_revoked`.
 */
export class Session {
  constructor(data, onLost) {
    this.data = data;
    this.onLost = onLost;
    this.refreshing = null;
    this.lost = false;
  }

  /** The session this tab signed in, or null. */
  static restore(onLost) {
    try {
      const data = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null');
      return data?.refresh_token ? new Session(data, onLost) : null;
    } catch {
      return null;
    }
  }

  /** Signs in; throws ApiError (bad_credentials, rate_limited, …). */
  static async signIn(username, password, onLost) {
    username = username.trim();
    const tokens = await postJson('/v1/auth/login', { username, password, device_name: DEVICE_NAME });
    const session = new Session(
      {
        username,
        user_id: tokens.user_id,
        device_id: tokens.device_id,
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        expires_at: Date.now() + tokens.expires_in * 1000,
      },
      onLost,
    );
    session.store();
    return session;
  }

  store() {
    if (!this.ended) sessionStorage.setItem(SESSION_KEY, JSON.stringify(this.data));
  }

  /** Forgets the tokens (this tab only). */
  clear() {
    sessionStorage.removeItem(SESSION_KEY);
  }

  /** Revokes this device (its refresh token stops working) and forgets it. */
  async signOut() {
    // Forgotten at once; the tokens in memory revoke the device.
    this.ended = true;
    this.lost = true;
    this.clear();
    try {
      await this.request(`/v1/devices/${encodeURIComponent(this.data.device_id)}/revoke`, { method: 'POST' });
    } catch {
      // Signed out here all the same; the access token expires by itself.
    }
  }

  lose(reason) {
    if (this.lost) return;
    this.lost = true;
    this.ended = true;
    this.clear();
    this.onLost?.(reason);
  }

  async accessToken() {
    const d = this.data;
    if (d.access_token && d.expires_at - EXPIRY_MARGIN_MS > Date.now()) return d.access_token;
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
      tokens = await postJson('/v1/auth/refresh', { refresh_token: this.data.refresh_token });
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        this.lose(error.code === 'device_revoked' ? 'device_revoked' : 'session_expired');
      }
      throw error;
    }
    // The old refresh token is retired now: keep the new one first.
    this.data = {
      ...this.data,
      access_token: tokens.access_token,
      refresh_token: tokens.refresh_token ?? this.data.refresh_token,
      expires_at: Date.now() + tokens.expires_in * 1000,
    };
    this.store();
    return tokens.access_token;
  }

  /**
   * fetch() of an API path with the access token. A 401 other than
   * `device_revoked` refreshes the token and tries once more. Returns the
   * response, whatever its status, except a 401 that remains (then the
   * session is lost and an ApiError thrown).
   */
  async request(path, init = {}) {
    for (let attempt = 0; ; attempt++) {
      const token = await this.accessToken();
      const response = await fetch(path, {
        ...init,
        headers: { ...init.headers, Authorization: `Bearer ${token}` },
      });
      if (response.status !== 401) return response;
      const error = await apiError(response);
      if (error.code === 'device_revoked') {
        this.lose('device_revoked');
        throw error;
      }
      if (attempt > 0) {
        this.lose('session_expired');
        throw error;
      }
      this.data = { ...this.data, access_token: null };
    }
  }

  /** GET (or `method`) a JSON answer; throws ApiError on an error status. */
  async json(path, { method = 'GET', body } = {}) {
    const init = { method };
    if (body !== undefined) {
      init.headers = { 'Content-Type': 'application/json' };
      init.body = JSON.stringify(body);
    }
    const response = await this.request(path, init);
    if (!response.ok) throw await apiError(response);
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }

  /** GET `path` with `params`. */
  get(path, params) {
    return this.json(withQuery(path, params));
  }

  /** POST a JSON body (or none). */
  post(path, body) {
    return this.json(path, { method: 'POST', body });
  }

  /** PUT a JSON body. */
  put(path, body) {
    return this.json(path, { method: 'PUT', body });
  }

  /** POST a raw body (a file) with its content type; JSON answer. */
  async upload(path, blob, contentType) {
    const response = await this.request(path, {
      method: 'POST',
      headers: { 'Content-Type': contentType },
      body: blob,
    });
    if (!response.ok) throw await apiError(response);
    return response.json();
  }

  /**
   * Fetches a file (an export, a template) with the bearer token and saves
   * it; the name comes from the answer's Content-Disposition, else
   * `fallbackName`. Returns the name saved under.
   */
  async download(path, fallbackName) {
    const response = await this.request(path);
    if (!response.ok) throw await apiError(response);
    const blob = await response.blob();
    const name = dispositionName(response) ?? fallbackName;
    saveBlob(blob, name);
    return name;
  }
}
