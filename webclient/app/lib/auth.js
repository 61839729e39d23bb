// Signing the pharmacist in: OAuth 2.0 authorization code with PKCE (S256) against the hub,
// as the public client "telepharm-console" whose redirect URI is this page. The access
// token lives in memory; the refresh token (rotated on every use) in this tab's
// sessionStorage, so a reload keeps the sign-in and closing the tab ends it. Tokens are
// refreshed shortly before they expire. Two tabs never share one: a duplicated tab copies
// sessionStorage, and the first refresh in either makes the other's token a reuse, which
// ends the sign-in (the hub's protection against stolen refresh tokens).

const CLIENT_ID = "telepharm-console";
const SCOPE = "openid rx:read rx:verify consults";
const REDIRECT = `${location.origin}/`;
const KEY = "telepharm.console";
const FRESH = "telepharm.console.fresh";
const EARLY_MS = 45_000;
const RETRY_MS = 10_000;

let session = null; // {access, refresh, expires, user}
let refreshing = null;
let timer = 0;
const listeners = new Set();

export class SignInError extends Error {
  constructor(message, { retryable = false } = {}) {
    super(message);
    this.retryable = retryable; // the hub was not reached or failed: the sign-in itself stands
  }
}

export const onSessionChange = (fn) => listeners.add(fn);
export const currentUser = () => session?.user ?? null;

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
}

const randomToken = () => base64url(crypto.getRandomValues(new Uint8Array(32)));

export async function signIn(returnTo = location.hash) {
  const verifier = randomToken();
  const state = randomToken();
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(`${KEY}.pkce`, JSON.stringify({ verifier, state, returnTo }));
  const query = new URLSearchParams({
    response_type: "code",
    client_id: CLIENT_ID,
    redirect_uri: REDIRECT,
    scope: SCOPE,
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  });
  // after a sign-out, the hub's own sign-in page must ask for the password and code again
  if (localStorage.getItem(FRESH)) query.set("prompt", "login");
  location.assign(`/oauth/authorize?${query}`);
}

async function tokenRequest(fields) {
  let response;
  try {
    response = await fetch("/oauth/token", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: CLIENT_ID, ...fields }),
    });
  } catch {
    throw new SignInError("The hub cannot be reached. Check the network and try again.", { retryable: true });
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new SignInError(body.error_description || body.error || "Sign-in failed.", {
      retryable: response.status >= 500,
    });
  }
  return body;
}

async function adopt(tokens) {
  const user = session?.user ?? (await fetchUser(tokens.access_token));
  session = {
    access: tokens.access_token,
    refresh: tokens.refresh_token,
    expires: Date.now() + tokens.expires_in * 1000,
    user,
  };
  sessionStorage.setItem(KEY, JSON.stringify({ refresh: session.refresh }));
  clearTimeout(timer);
  timer = setTimeout(() => refresh().catch(() => {}), Math.max(5_000, tokens.expires_in * 1000 - EARLY_MS));
  listeners.forEach((fn) => fn(session.user));
}

async function fetchUser(access) {
  const response = await fetch("/oauth/userinfo", { headers: { Authorization: `Bearer ${access}` } });
  if (!response.ok) throw new SignInError("The sign-in could not be confirmed.");
  return response.json();
}

// Called once at start-up: finish a sign-in coming back from the hub, or pick up the tab's
// sign-in. Returns the hash to show, or null when nobody is signed in.
export async function start() {
  const params = new URLSearchParams(location.search);
  if (params.has("code") || params.has("error")) return finish(params);
  const saved = JSON.parse(sessionStorage.getItem(KEY) || "null");
  if (!saved?.refresh) return null;
  try {
    await adopt(await tokenRequest({ grant_type: "refresh_token", refresh_token: saved.refresh }));
  } catch {
    forget();
    return null;
  }
  return location.hash;
}

async function finish(params) {
  const pending = JSON.parse(sessionStorage.getItem(`${KEY}.pkce`) || "null");
  sessionStorage.removeItem(`${KEY}.pkce`);
  history.replaceState(null, "", `/${pending?.returnTo || ""}`);
  if (params.has("error")) throw new SignInError(params.get("error_description") || "Sign-in was cancelled.");
  if (!pending || pending.state !== params.get("state")) {
    throw new SignInError("This sign-in did not start here. Please sign in again.");
  }
  await adopt(
    await tokenRequest({
      grant_type: "authorization_code",
      code: params.get("code"),
      redirect_uri: REDIRECT,
      code_verifier: pending.verifier,
    }),
  );
  localStorage.removeItem(FRESH);
  return pending.returnTo || "";
}

export function refresh() {
  if (!session) return Promise.reject(new SignInError("Not signed in."));
  refreshing ??= tokenRequest({ grant_type: "refresh_token", refresh_token: session.refresh })
    .then(adopt)
    .catch((error) => {
      if (error.retryable) {
        // a network blip is not a sign-out: keep the refresh token and try again shortly
        clearTimeout(timer);
        timer = setTimeout(() => refresh().catch(() => {}), RETRY_MS);
      } else {
        forget();
        listeners.forEach((fn) => fn(null));
      }
      throw error;
    })
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

export async function accessToken() {
  if (!session) throw new SignInError("Not signed in.");
  if (Date.now() > session.expires - EARLY_MS) await refresh();
  return session.access;
}

function forget() {
  clearTimeout(timer);
  session = null;
  sessionStorage.removeItem(KEY);
}

export async function signOut() {
  const token = session?.refresh;
  forget();
  localStorage.setItem(FRESH, "1");
  if (token) {
    // revoking the refresh token ends the whole sign-in: its access tokens die with it
    await fetch("/oauth/revoke", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: CLIENT_ID, token, token_type_hint: "refresh_token" }),
    }).catch(() => {});
  }
  listeners.forEach((fn) => fn(null));
}
