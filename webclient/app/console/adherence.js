// Adherence for outreach (issue 17, docs/patients.md "The adherence API"): the pharmacy's
// patients' proportion of days covered per measured class in a period (by default the calendar
// year to date), or only those below 80 %, and the same list as CSV. Pharmacists only (the hub
// refuses anyone else). The CSV is behind the sign-in like every API call, and a plain link
// cannot send the bearer token: it is fetched as a blob and saved from a blob: URL.

import { api, apiBlob } from "../lib/api.js";
import { h, replace, announce, spinner, problemBox, emptyBox, clock } from "../lib/dom.js";
import { adherenceTable } from "./preferences.js";

const isoDay = (date) => date.toISOString().slice(0, 10); // UTC, as the hub's default period
// the period and the filter outlive a visit to a profile, as the queue's filters do
let asked = null;

export function adherenceView(el) {
  const today = isoDay(new Date());
  asked ??= { from: `${today.slice(0, 4)}-01-01`, to: today, below: false };
  const from = h("input", { type: "date", id: "adh-from", value: asked.from, max: today, required: true });
  const to = h("input", { type: "date", id: "adh-to", value: asked.to, max: today, required: true });
  const below = h("input", { type: "checkbox", id: "adh-below", checked: asked.below, onchange: () => load() });
  const status = h("p", { class: "status-line" });
  const body = h("div", {}, spinner("Loading the adherence…"));
  const message = h("div", { class: "form-message", tabindex: "-1" });
  const download = h("button", { type: "button", class: "secondary", id: "adh-csv", onclick: downloadCsv }, "Download CSV");

  const query = () => {
    const params = new URLSearchParams({ from: asked.from, to: asked.to });
    if (asked.below) params.set("below", "true");
    return params.toString();
  };

  function read() {
    asked = { from: from.value, to: to.value, below: below.checked };
  }

  async function load() {
    read();
    replace(message);
    try {
      const found = await api(`/adherence?${query()}`);
      if (!el.isConnected) return;
      replace(body, found.items.length
        ? adherenceTable(found.items, asked.below ? "Patients below 80 %" : "Adherence by patient and class", { withPatient: true })
        : emptyBox(asked.below ? "No patient the measure counts is below 80 % in this period." : "No patient with a counted fill in this period."));
      replace(status, `${found.items.length} result${found.items.length === 1 ? "" : "s"}, ${found.period_from} to ${found.period_to} · updated ${clock()}`);
      announce(`${found.items.length} adherence result${found.items.length === 1 ? "" : "s"}.`);
    } catch (error) {
      replace(body);
      replace(message, problemBox(error, load));
      message.focus();
    }
  }

  async function downloadCsv() {
    read();
    download.disabled = true;
    try {
      const blob = await apiBlob(`/adherence.csv?${query()}`, "text/csv");
      const url = URL.createObjectURL(blob);
      const name = `adherence-${asked.from}-${asked.to}.csv`;
      const link = h("a", { href: url, download: name, hidden: true }, name);
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      replace(message, h("div", { class: "notice ok", role: "status" }, `Downloaded ${name}.`));
      announce(`Downloaded ${name}.`);
    } catch (error) {
      replace(message, problemBox(error, downloadCsv));
      message.focus();
    } finally {
      download.disabled = false;
    }
  }

  replace(el,
    h("div", { class: "page-head" }, h("h1", {}, "Adherence"), h("span", { class: "spacer" }), download),
    h("p", { class: "hint" }, "Proportion of days covered (PQA method) per measured class: statins, RAS antagonists, diabetes medications. Eligible: fills on two dates or more in the period; adherent: 80 % or more. The CSV names patients by their profile ID only."),
    h("form", { class: "card filters", "aria-label": "Measurement period", onsubmit: (e) => { e.preventDefault(); load(); } },
      h("div", { class: "field" }, h("label", { for: "adh-from" }, "From"), from),
      h("div", { class: "field" }, h("label", { for: "adh-to" }, "To"), to),
      h("label", { class: "inline" }, below, "Below 80 % only"),
      h("button", { type: "submit" }, "Show")),
    message,
    h("section", { class: "card", "aria-labelledby": "adh-list-h" },
      h("h2", { id: "adh-list-h" }, "Patients"), status, body));
  load();
}
