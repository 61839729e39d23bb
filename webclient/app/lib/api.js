// The hub's REST API (/api/v1), as the signed-in pharmacist. Problems (RFC 9457) become
// ApiError with the hub's stable code; a 401 refreshes the token once and tries again.

import { accessToken, refresh } from "./auth.js";
import { replace, spinner, problemBox } from "./dom.js";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `The hub answered ${status}.`);
    this.status = status;
    this.code = problem.code || "";
    this.problem = problem;
  }
}

async function send(path, { method, body, token, accept = "application/json", extra = {} }) {
  const headers = { ...extra, Accept: accept };
  if (token) headers.Authorization = `Bearer ${token}`;
  const raw = body instanceof Blob;
  if (body !== undefined) headers["Content-Type"] = raw ? body.type : "application/json";
  try {
    return await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined || raw ? body : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, { detail: "The hub cannot be reached. Check the network; we keep trying.", code: "offline" });
  }
}

async function exchange(path, { method = "GET", body, anonymous = false, accept, headers: extra } = {}) {
  let response = await send(path, { method, body, accept, extra, token: anonymous ? null : await accessToken() });
  if (response.status === 401 && !anonymous) {
    await refresh();
    response = await send(path, { method, body, accept, extra, token: await accessToken() });
  }
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => ({})));
  return response;
}

// a JSON answer; a Blob body (a photo, a signature) is sent as itself, with its own type;
// `headers` adds request headers (an Idempotency-Key)
export async function api(path, options = {}) {
  const response = await exchange(path, options);
  return response.json().catch(() => ({}));
}

// a file the hub keeps behind the sign-in (a fill's photo, its label PDF): an <img> or a new
// tab cannot send the token, so it is fetched and shown from a blob: URL
export async function apiBlob(path, accept = "*/*") {
  const response = await exchange(path, { accept });
  return response.blob();
}

// A view's first read: a loading state in `el` meanwhile, and on failure the problem in its
// place (a miss in plain words, anything else with a way to try again: the router shows the
// view anew). Null when it failed.
const retry = () => window.dispatchEvent(new HashChangeEvent("hashchange"));

export async function loadInto(el, path, what) {
  replace(el, spinner(`Loading the ${what}…`));
  try {
    return await api(path);
  } catch (error) {
    const missing = error.status === 404;
    replace(el, problemBox(missing ? new Error(`This ${what} does not exist in your pharmacy.`) : error, missing ? null : retry));
    return null;
  }
}
