// The sign-in screen: online the first time on a phone, then on the phone.

import { useState } from '../vendor/preact-htm.js';
import { t } from '../i18n.js';
import { html, Field, ErrorBox } from './common.js';

/** Turns a sign-in failure into the sentence to show. */
function reason(error) {
  switch (error.code) {
    case 'bad_credentials':
      return t('signin_bad_credentials');
    case 'offline_unknown':
      return t('signin_offline_unknown');
    case 'offline_wrong':
      return t('signin_offline_wrong');
    case 'rate_limited':
      return t('signin_rate_limited', { seconds: error.retryAfter ?? 60 });
    default:
      return t('signin_failed', { message: error.message });
  }
}

/**
 * `signIn(username, password, confirmed)` signs in; it rejects with
 * `{code: 'other_user', user}` when the phone holds another user's data
 * and `confirmed` is false. `notice` is a message to show above the form
 * (revoked device, expired sign-in).
 */
export function SignIn({ signIn, notice, lastUser }) {
  const [username, setUsername] = useState(lastUser ?? '');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [confirmFor, setConfirmFor] = useState(null);

  async function submit(e) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(username, password, confirmFor === username.trim());
    } catch (err) {
      if (err.code === 'other_user') {
        setConfirmFor(username.trim());
        setError(t('signin_other_user', { user: err.user }));
      } else {
        setError(reason(err));
      }
      setBusy(false);
    }
  }

  return html`<main class="signin">
    <img class="signin-logo" src="icon.svg" alt="" width="72" height="72" />
    <h1>${t('app_name')}</h1>
    <p class="muted">${t('signin_intro')}</p>
    ${notice && html`<div class="notice" role="alert" data-testid="signin-notice">${notice}</div>`}
    ${!navigator.onLine && html`<p class="muted">${t('signin_offline_hint')}</p>`}
    <form onSubmit=${submit} class="form">
      <${Field} name=${t('username')}>
        <input
          name="username"
          autocomplete="username"
          autocapitalize="none"
          required
          value=${username}
          onInput=${(e) => setUsername(e.target.value)}
        />
      <//>
      <${Field} name=${t('password')}>
        <input
          name="password"
          type="password"
          autocomplete="current-password"
          required
          value=${password}
          onInput=${(e) => setPassword(e.target.value)}
        />
      <//>
      <${ErrorBox} error=${error} />
      <button class="primary big" type="submit" disabled=${busy}>
        ${busy ? t('signing_in') : t('signin')}
      </button>
    </form>
  </main>`;
}
