// Building the page from data without innerHTML: every value becomes a text node or a
// property, so nothing a prescriber or a patient typed can become markup.

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (typeof value !== "string" && key in el) el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

const DATE_TIME = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const DATE = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeZone: "UTC" });
const TIME = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });

export const when = (iso) => (iso ? DATE_TIME.format(new Date(iso)) : "—");
export const day = (iso) => (iso ? DATE.format(new Date(`${iso.slice(0, 10)}T00:00:00Z`)) : "—");
export const clock = (date = new Date()) => TIME.format(date);

export function ago(iso, now = Date.now()) {
  const minutes = Math.round((now - new Date(iso).getTime()) / 60000);
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  return `${Math.round(hours / 24)} d ago`;
}

export function personName(name) {
  if (!name) return "Unknown";
  const first = [name.prefix, name.first, name.middle].filter(Boolean).join(" ");
  const last = [name.last, name.suffix].filter(Boolean).join(" ");
  return [titleCase(last), titleCase(first)].filter(Boolean).join(", ") || "Unknown";
}

export function titleCase(text) {
  if (!text) return "";
  return text === text.toUpperCase()
    ? text.toLowerCase().replace(/(^|[\s'-])\p{L}/gu, (m) => m.toUpperCase())
    : text;
}

// A labelled fact for a definition list.
export function fact(label, ...value) {
  const shown = value.filter((v) => v !== null && v !== undefined && v !== "");
  return [h("dt", {}, label), h("dd", {}, shown.length ? shown : "—")];
}

// A polite live region: what screen readers announce when the page changes by itself.
export function announce(text) {
  const region = document.getElementById("announcer");
  if (region) region.textContent = text;
}

export function spinner(label = "Loading…") {
  return h("p", { class: "loading", role: "status" }, h("span", { class: "spin", "aria-hidden": "true" }), label);
}

export function problemBox(error, retry) {
  return h(
    "div",
    { class: "notice error", role: "alert" },
    h("p", {}, error.message || String(error)),
    retry ? h("button", { type: "button", class: "secondary", onclick: retry }, "Try again") : null,
  );
}

export function emptyBox(text, ...more) {
  return h("div", { class: "notice empty" }, h("p", {}, text), ...more);
}
