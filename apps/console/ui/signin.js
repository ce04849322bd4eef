// The sign-in form: username and password, POST /v1/auth/login.

import { t } from '../i18n.js';
import { html, useState } from './common.js';

export function SignIn({ signIn, notice }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);

  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(username, password);
    } catch (e) {
      if (e.code === 'bad_credentials') setError(t('signin_bad_credentials'));
      else if (e.code === 'rate_limited') setError(t('signin_rate_limited', { seconds: e.retryAfter ?? 60 }));
      else setError(t('signin_failed', { message: e.message }));
      setBusy(false);
    }
  };

  return html`<main class="signin">
    <form class="signin-card" onSubmit=${submit}>
      <h1>${t('signin_title')}</h1>
      <p class="muted">${t('signin_intro')}</p>
      ${notice && html`<p class="notice" data-testid="signin-notice">${notice}</p>`}
      <label class="field">
        <span>${t('username')}</span>
        <input
          id="username"
          autocomplete="username"
          required
          value=${username}
          onInput=${(e) => setUsername(e.currentTarget.value)}
        />
      </label>
      <label class="field">
        <span>${t('password')}</span>
        <input
          id="password"
          type="password"
          autocomplete="current-password"
          required
          value=${password}
          onInput=${(e) => setPassword(e.currentTarget.value)}
        />
      </label>
      ${error && html`<p class="error-text" role="alert">${error}</p>`}
      <button type="submit" class="primary" disabled=${busy}>${busy ? t('signing_in') : t('signin')}</button>
    </form>
  </main>`;
}
