// The patient page's calls to /api/v1/me: the session is an HttpOnly cookie the page never
// sees; each change carries the session's CSRF token. Problems become MeError with the hub's
// stable code.

export class MeError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `The pharmacy answered ${status}.`);
    this.status = status;
    this.code = problem.code || "";
  }
}

let csrf = "";
export const setCsrf = (token) => { csrf = token || ""; };

export async function me(path, { method = "GET", body, headers: extra = {} } = {}) {
  const headers = { Accept: "application/json", ...extra };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  let response;
  try {
    response = await fetch(`/api/v1/me${path}`, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new MeError(0, { detail: "The pharmacy cannot be reached. Check your connection and try again.", code: "offline" });
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new MeError(response.status, answer);
  return answer;
}
