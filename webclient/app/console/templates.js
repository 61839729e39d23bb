// The pharmacy admin's notification templates (issue 17, docs/notifications.md "A pharmacy's own
// templates"): every kind in every language, the pharmacy's own or the hub's default; an editor
// whose preview (the hub fills the template in with synthetic values, never a patient's) follows
// the typing; save, reset to the default; and whether drug names may show in texts and email
// subjects. The hub checks everything: this screen shows its refusals in its words.

import { api, loadInto } from "../lib/api.js";
import { h, replace, when, announce, spinner } from "../lib/dom.js";
import { KIND_LABELS } from "./preferences.js";

const LABELS = {
  ...KIND_LABELS,
  sign_in_code: "Sign-in code",
  opted_out: "Reply to STOP",
  opted_in: "Reply to START",
  help: "Reply to HELP",
};
const LANGUAGE_NAMES = { en: "English", es: "Spanish" };
const PREVIEW_DELAY = 400; // ms after the last keystroke

const label = (kind) => LABELS[kind] || kind;
const notice = (kind, ...text) => h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, ...text);

// #/templates: the list and the drug-name setting
export async function templatesView(el) {
  const data = await loadInto(el, "/notifications/templates", "templates");
  if (!data) return;
  const byKind = new Map();
  for (const item of data.items) {
    if (!byKind.has(item.kind)) byKind.set(item.kind, {});
    byKind.get(item.kind)[item.language] = item;
  }
  const cell = (item) =>
    item
      ? h("td", { "data-language": item.language },
          h("a", { href: `#/templates/${item.kind}/${item.language}` },
            item.custom ? `Own (version ${item.version})` : "Default",
            h("span", { class: "visually-hidden" }, `: ${label(item.kind)}, ${LANGUAGE_NAMES[item.language] || item.language}`)))
      : h("td", {}, "—");
  replace(
    el,
    h("section", { class: "card" },
      h("h1", {}, "Notification templates"),
      h("p", { class: "hint" },
        "What patients are sent, per notification and language. Edit one to preview it with sample values before you save it; reset goes back to the hub's default."),
      drugNameSetting(data.allow_drug_names),
      h("table", { class: "queue templates", "aria-label": "Templates" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Notification"),
          data.languages.map((l) => h("th", { scope: "col" }, LANGUAGE_NAMES[l] || l)))),
        h("tbody", {}, [...byKind.entries()].map(([kind, items]) =>
          h("tr", { "data-kind": kind }, h("th", { scope: "row" }, label(kind)), data.languages.map((l) => cell(items[l]))))))),
  );
}

function drugNameSetting(allowed) {
  const message = h("div", { class: "form-message" });
  const box = h("input", { type: "checkbox", id: "allow-drug-names", checked: allowed });
  box.addEventListener("change", async () => {
    box.disabled = true;
    try {
      const saved = await api("/notifications/settings", { method: "PUT", body: { allow_drug_names: box.checked } });
      box.checked = saved.allow_drug_names;
      const text = saved.allow_drug_names
        ? "Drug names may now show in texts and email subjects, where a template names them."
        : "Drug names no longer show in texts or email subjects; templates that named them there send the default instead.";
      replace(message, notice("ok", text));
      announce(text);
    } catch (error) {
      box.checked = !box.checked;
      replace(message, notice("error", error.message));
    } finally {
      box.disabled = false;
    }
  });
  return h("div", { class: "setting" },
    h("label", { class: "inline" }, box, "Allow drug names in texts and email subjects"),
    h("p", { class: "hint" },
      "Off by default (minimum necessary): a text or a subject shows on a lock screen or in an inbox list. The email's text may name the drug either way."),
    message);
}

// #/templates/<kind>/<language>: the editor with its live preview
export async function templateView(el, kind, language) {
  const data = await loadInto(el, "/notifications/templates", "templates");
  if (!data) return;
  const item = data.items.find((i) => i.kind === kind && i.language === language);
  if (!item) {
    replace(el, notice("error", "No such template."));
    return;
  }
  const url = `/notifications/templates/${kind}/${language}`;
  const f = {
    sms: h("textarea", { id: "tpl-sms", rows: 4, spellcheck: true }),
    subject: h("input", { type: "text", id: "tpl-subject", autocomplete: "off" }),
    text: h("textarea", { id: "tpl-text", rows: 9 }),
    html: h("textarea", { id: "tpl-html", rows: 5 }),
  };
  const status = h("p", { class: "hint", id: "tpl-status" });
  const message = h("div", { class: "form-message", tabindex: "-1" });
  const preview = h("div", { class: "tpl-preview", id: "tpl-preview", "aria-live": "polite" });
  const save = h("button", { type: "submit" }, "Save");
  const reset = h("button", { type: "button", class: "secondary", id: "tpl-reset" }, "Reset to default");
  let timer = null;
  let asked = 0;

  function fill(current) {
    f.sms.value = current.sms;
    f.subject.value = current.email_subject;
    f.text.value = current.email_text;
    f.html.value = current.email_html || "";
    status.textContent = current.custom
      ? `The pharmacy's own, version ${current.version}${current.updated_at ? `, changed ${when(current.updated_at)}` : ""}.`
      : "The hub's default.";
    reset.disabled = !current.custom;
  }

  const body = () =>
    item.sms_only
      ? { sms: f.sms.value }
      : { sms: f.sms.value, email_subject: f.subject.value, email_text: f.text.value, email_html: f.html.value.trim() ? f.html.value : null };

  async function showPreview() {
    const mine = ++asked;
    try {
      const shown = await api(`${url}/preview`, { method: "POST", body: body() });
      if (mine !== asked) return;
      const segments = `${shown.sms.segments} segment${shown.sms.segments === 1 ? "" : "s"}`;
      replace(preview,
        h("h3", {}, "Text message"),
        h("p", { class: "sms-bubble", id: "preview-sms" }, shown.sms.text),
        h("p", { class: "hint", id: "preview-length" }, `${shown.sms.encoding} · ${segments} · ${shown.sms.units} units (at most ${data.sms_max_segments} segments)`),
        shown.email
          ? [h("h3", {}, "Email"),
            h("p", {}, h("strong", {}, "Subject: "), h("span", { id: "preview-subject" }, shown.email.subject)),
            h("pre", { class: "email-text", id: "preview-text" }, shown.email.text)]
          : null,
        h("p", { class: "hint" }, "Filled in with sample values, not a patient's."));
    } catch (error) {
      if (mine !== asked) return;
      replace(preview, h("div", { class: "notice error", role: "alert", id: "preview-problem" }, h("p", {}, error.message)));
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(showPreview, PREVIEW_DELAY);
  }

  async function submit(e) {
    e.preventDefault();
    clearTimeout(timer);
    save.disabled = true;
    try {
      const saved = await api(url, { method: "PUT", body: body() });
      Object.assign(item, saved);
      fill(saved);
      const text = `Saved: version ${saved.version}.`;
      replace(message, notice("ok", text));
      announce(text);
    } catch (error) {
      replace(message, notice("error", error.message));
    } finally {
      save.disabled = false;
      message.focus();
    }
  }

  reset.addEventListener("click", async () => {
    if (!confirm(`Reset "${label(kind)}" (${LANGUAGE_NAMES[language] || language}) to the hub's default?`)) return;
    reset.disabled = true;
    try {
      const back = await api(url, { method: "DELETE" });
      Object.assign(item, back);
      fill(back);
      replace(message, notice("ok", "Reset to the default."));
      announce("Reset to the default.");
      showPreview();
    } catch (error) {
      replace(message, notice("error", error.message));
      reset.disabled = false;
    }
  });

  for (const input of Object.values(f)) input.addEventListener("input", schedule);
  fill(item);
  const field = (id, text, input, hint) => h("div", { class: "field" }, h("label", { for: id }, text), input, hint ? h("p", { class: "hint" }, hint) : null);
  replace(
    el,
    h("p", {}, h("a", { href: "#/templates" }, "← All templates")),
    h("section", { class: "card" },
      h("h1", {}, `${label(kind)} · ${LANGUAGE_NAMES[language] || language}`),
      status,
      h("p", { class: "hint" }, "Placeholders: ", item.placeholders.map((p) => h("code", {}, `$${p}`)).flatMap((c, i) => (i ? [", ", c] : [c])), ". Write $$ for a dollar sign."),
      h("div", { class: "split tpl-editor" },
        h("form", { onsubmit: submit, "aria-label": "Template" },
          field("tpl-sms", "Text message (SMS)", f.sms),
          item.sms_only
            ? h("p", { class: "hint" }, "Sent by text only: no email.")
            : [field("tpl-subject", "Email subject", f.subject),
              field("tpl-text", "Email text", f.text),
              field("tpl-html", "Email HTML (optional)", f.html, "Leave empty to send the text only.")],
          message,
          h("div", { class: "actions" }, save, reset)),
        h("section", { class: "tpl-preview-pane", "aria-labelledby": "preview-h" },
          h("h2", { id: "preview-h" }, "Preview"),
          preview))),
  );
  replace(preview, spinner("Previewing…"));
  showPreview();
  return () => clearTimeout(timer);
}
