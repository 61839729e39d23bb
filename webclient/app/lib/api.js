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

async function send(path, { method, body, token }) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  try {
    return await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, { detail: "The hub cannot be reached. Check the network; we keep trying.", code: "offline" });
  }
}

export async function api(path, { method = "GET", body, anonymous = false } = {}) {
  let response = await send(path, { method, body, token: anonymous ? null : await accessToken() });
  if (response.status === 401 && !anonymous) {
    await refresh();
    response = await send(path, { method, body, token: await accessToken() });
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
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
