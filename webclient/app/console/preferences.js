// A patient's contact points, preferences and notification consent, and their adherence, as
// cards on the profile (issue 17, docs/patients.md "Profile: contacts, preferences, consent" and
// "The adherence API"). The hub checks everything (time zone, quiet hours, codes, tries): this
// card sends what was typed and shows the hub's refusals, in its words, beside the form.

import { api } from "../lib/api.js";
import { currentUser } from "../lib/auth.js";
import { h, replace, when, day, announce, spinner, problemBox } from "../lib/dom.js";

// who may change them (server/patients/contacts_http.py); reading is the profile's
const CHANGERS = ["pharmacist", "technician"];
const mayChange = () => CHANGERS.includes(currentUser()?.role);

const LANGUAGES = [["en", "English"], ["es", "Spanish"], ["zh", "Chinese"], ["vi", "Vietnamese"], ["ko", "Korean"],
  ["tl", "Tagalog"], ["ru", "Russian"], ["ar", "Arabic"], ["fr", "French"], ["ht", "Haitian Creole"], ["pt", "Portuguese"]];
const US_ZONES = ["America/New_York", "America/Chicago", "America/Denver", "America/Phoenix", "America/Los_Angeles",
  "America/Anchorage", "Pacific/Honolulu", "America/Puerto_Rico", "America/Detroit", "America/Indiana/Indianapolis",
  "America/Boise", "Pacific/Guam"];
export const KIND_LABELS = {
  prescription_received: "Prescription received",
  needs_prescriber: "Waiting for the prescriber",
  ready_for_pickup: "Ready for pick-up",
  not_collected_reminder: "Not collected: reminder",
  shipped: "Shipped",
  refill_due: "Refill due",
  consult_scheduled: "Consult scheduled",
  cancelled_by_prescriber: "Cancelled by the prescriber",
  payment_failed: "Payment plan: payment refused",
};
const CHANNELS = [["email", "Email"], ["sms", "SMS"]];
const CONTACT_KINDS = { email: "Email", mobile: "Mobile" };
export const CLASS_LABELS = { statins: "Statins", ras_antagonists: "RAS antagonists", diabetes: "Diabetes medications" };

const notice = (kind, ...text) => h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, ...text);

// -- contact and preferences -------------------------------------------------------------------

export function contactCard(patientId) {
  const base = `/patients/${patientId}`;
  const card = h("section", { class: "card", "aria-labelledby": "prefs-h" },
    h("h2", { id: "prefs-h" }, "Contact and preferences"), spinner("Loading the preferences…"));
  load();
  return card;

  async function load() {
    try {
      const data = await api(`${base}/preferences`);
      replace(card, h("h2", { id: "prefs-h" }, "Contact and preferences"),
        mayChange() ? null : h("p", { class: "hint" }, "Pharmacists and technicians change these."),
        preferencesForm(base, data.preferences),
        contactsPart(base, data.contacts),
        consentPart(base, data.consent));
    } catch (error) {
      replace(card, h("h2", { id: "prefs-h" }, "Contact and preferences"), problemBox(error, load));
    }
  }
}

function select(id, options, value) {
  return h("select", { id }, options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)));
}

const check = (id, checked) => h("input", { type: "checkbox", id, checked: Boolean(checked) });

function preferencesForm(base, prefs) {
  const message = h("div", { class: "form-message", tabindex: "-1" });
  const languages = LANGUAGES.some(([code]) => code === prefs.language) ? LANGUAGES : [...LANGUAGES, [prefs.language, prefs.language]];
  const rep = prefs.representative || {};
  const f = {
    language: select("pref-language", languages, prefs.language),
    zone: h("input", { type: "text", id: "pref-zone", list: "us-zones", value: prefs.time_zone || "", autocomplete: "off", spellcheck: false, placeholder: "e.g. America/New_York" }),
    quietStart: h("input", { type: "time", id: "pref-quiet-start", value: prefs.quiet_start || "" }),
    quietEnd: h("input", { type: "time", id: "pref-quiet-end", value: prefs.quiet_end || "" }),
    channel: select("pref-channel", [["none", "None (do not notify)"], ["email", "Email"], ["sms", "SMS"]], prefs.preferred_channel),
    brand: select("pref-brand", [["", "No preference"], ["generic", "Generic"], ["brand", "Brand"]], prefs.generic_or_brand || ""),
    handover: select("pref-handover", [["", "No preference"], ["pickup", "Pick-up"], ["delivery", "Delivery"]], prefs.pickup_or_delivery || ""),
    ninety: check("pref-ninety", prefs.ninety_day_supply),
    caps: check("pref-caps", prefs.easy_open_caps),
    print: check("pref-print", prefs.large_print_labels),
    repName: h("input", { type: "text", id: "rep-name", maxLength: 100, value: rep.name || "", autocomplete: "off" }),
    repRelation: h("input", { type: "text", id: "rep-relationship", maxLength: 50, value: rep.relationship || "", autocomplete: "off" }),
    repContact: h("input", { type: "text", id: "rep-contact", maxLength: 320, value: rep.contact || "", autocomplete: "off" }),
  };
  const save = h("button", { type: "submit", class: "secondary" }, "Save preferences");
  const field = (id, label, input) => h("div", {}, h("label", { for: id }, label), input);
  const box = (input, label) => h("label", { class: "inline" }, input, label);

  async function submit(e) {
    e.preventDefault();
    const repParts = [f.repName, f.repRelation, f.repContact].map((i) => i.value.trim());
    if (repParts.some(Boolean) && !repParts.every(Boolean)) {
      replace(message, notice("error", "A caregiver needs a name, a relationship and a contact (or none of them)."));
      (repParts[0] ? (repParts[1] ? f.repContact : f.repRelation) : f.repName).focus();
      return;
    }
    const body = {
      language: f.language.value,
      time_zone: f.zone.value.trim() || null,
      quiet_start: f.quietStart.value || null,
      quiet_end: f.quietEnd.value || null,
      preferred_channel: f.channel.value,
      generic_or_brand: f.brand.value || null,
      pickup_or_delivery: f.handover.value || null,
      ninety_day_supply: f.ninety.checked,
      easy_open_caps: f.caps.checked,
      large_print_labels: f.print.checked,
      representative: repParts.every(Boolean) ? { name: repParts[0], relationship: repParts[1], contact: repParts[2] } : null,
    };
    save.disabled = true;
    try {
      await api(`${base}/preferences`, { method: "PUT", body });
      replace(message, notice("ok", "Preferences saved."));
      announce("Preferences saved.");
      message.focus();
    } catch (error) {
      replace(message, notice("error", error.message));
      // the refusals name the time zone or the quiet hours: the field gets the focus
      const text = error.message.toLowerCase();
      (text.includes("time zone") ? f.zone : text.includes("quiet") ? f.quietStart : message).focus();
    } finally {
      save.disabled = false;
    }
  }

  return h("form", { class: "preferences", "aria-labelledby": "pref-h", onsubmit: submit },
    h("fieldset", { class: "plain", disabled: !mayChange() },
      h("h3", { id: "pref-h" }, "Preferences"),
      h("datalist", { id: "us-zones" }, US_ZONES.map((z) => h("option", { value: z }))),
      h("div", { class: "fields" },
        field("pref-language", "Language", f.language),
        field("pref-zone", "Time zone", f.zone),
        field("pref-channel", "Preferred channel", f.channel)),
      h("div", { class: "fields" },
        field("pref-quiet-start", "Quiet hours from", f.quietStart),
        field("pref-quiet-end", "Quiet hours until", f.quietEnd),
        field("pref-brand", "Generic or brand", f.brand),
        field("pref-handover", "Pick-up or delivery", f.handover)),
      h("p", { class: "hint" }, "Quiet hours are the patient's local time: both or neither (empty: 21:00 to 08:00). A channel needs the time zone."),
      h("div", { class: "checks" }, box(f.ninety, "90-day supply"), box(f.caps, "Easy-open caps"), box(f.print, "Large-print labels")),
      h("fieldset", { class: "plain" }, h("legend", {}, "Caregiver or authorised representative"),
        h("div", { class: "fields" },
          field("rep-name", "Caregiver's name", f.repName),
          field("rep-relationship", "Relationship", f.repRelation),
          field("rep-contact", "Caregiver's phone or email", f.repContact))),
      h("div", { class: "actions" }, save)),
    message);
}

// -- contact points ------------------------------------------------------------------------------

function contactsPart(base, initial) {
  let contacts = initial;
  const said = new Map(); // contact id -> the notice beside it (kept across redraws)
  const list = h("div", {});
  const message = h("div", { class: "form-message", tabindex: "-1" });
  const kind = select("contact-kind", [["email", "Email"], ["mobile", "Mobile"]], "email");
  const value = h("input", { type: "text", id: "contact-value", maxLength: 320, autocomplete: "off", spellcheck: false });
  const add = h("button", { type: "submit", class: "secondary" }, "Add and send a code");

  function draw(focusId) {
    replace(list, contacts.length
      ? h("ul", { class: "plain contacts", "aria-label": "Contact points" }, contacts.map(item))
      : h("p", { class: "hint" }, "No contact point yet: add an email address or a mobile number."));
    if (focusId) document.getElementById(focusId)?.focus();
  }

  function item(c) {
    const label = `${CONTACT_KINDS[c.kind]} ${c.value}`;
    const state = c.opted_out_at ? h("span", { class: "badge hard_stop" }, "Opted out")
      : c.verified_at ? h("span", { class: "badge verified", title: `Verified ${when(c.verified_at)}` }, "Verified")
        : h("span", { class: "badge warning" }, "Not verified");
    const codeId = `code-${c.id}`;
    const code = h("input", { type: "text", id: codeId, inputmode: "numeric", autocomplete: "one-time-code", maxLength: 12, pattern: "\\d{6}", size: 8 });
    const verifying = !c.verified_at && !c.opted_out_at && mayChange();
    return h("li", { class: "contact", dataset: { contact: c.id } },
      h("div", { class: "contact-line" },
        h("strong", {}, CONTACT_KINDS[c.kind]), " ", h("span", { class: "address" }, c.value), " ", state,
        h("span", { class: "spacer" }),
        mayChange() ? h("button", { type: "button", class: "quiet", "aria-label": `Remove ${label}`, onclick: () => remove(c) }, "Remove") : null),
      verifying
        ? h("form", { class: "verify", onsubmit: (e) => { e.preventDefault(); verify(c, code); } },
          h("label", { for: codeId }, `Code sent to ${c.value}`), code,
          h("button", { type: "submit", class: "secondary" }, "Verify"),
          h("button", { type: "button", class: "quiet", onclick: () => resend(c) }, "Send a new code"))
        : null,
      said.get(c.id) || null);
  }

  async function verify(c, code) {
    if (!code.value.trim()) {
      said.set(c.id, notice("error", "Type the 6-digit code the patient received."));
      draw(`code-${c.id}`);
      return;
    }
    try {
      const done = await api(`${base}/contacts/${c.id}/verify`, { method: "POST", body: { code: code.value.trim() } });
      contacts = contacts.map((x) => (x.id === done.id ? done : x));
      const words = `${CONTACT_KINDS[c.kind]} ${c.value} verified.`;
      said.set(c.id, notice("ok", words));
      announce(words);
      draw();
      list.querySelector(`li[data-contact="${c.id}"] .notice`)?.setAttribute("tabindex", "-1");
      list.querySelector(`li[data-contact="${c.id}"] .notice`)?.focus();
    } catch (error) {
      const remaining = error.problem?.remaining;
      const more = error.code === "code_wrong" && remaining !== undefined
        ? ` ${remaining} ${remaining === 1 ? "try" : "tries"} left.` : "";
      const dead = error.code === "code_dead" || (error.code === "code_wrong" && remaining === 0);
      said.set(c.id, notice("error", error.message + more, dead ? " Send a new code." : ""));
      draw(`code-${c.id}`);
    }
  }

  async function send(kindValue, text) {
    return api(`${base}/contacts`, { method: "POST", body: { kind: kindValue, value: text } });
  }

  function sentWords(c) {
    if (c.opted_out_at) return notice("error", "This address opted out: no code was sent. The patient opts in again by replying START.");
    if (c.verified_at) return notice("ok", "Already verified.");
    return notice("ok", `Code sent to ${c.value}. It is valid for 10 minutes: type it in the code field when the patient reads it to you.`);
  }

  async function resend(c) {
    try {
      const done = await send(c.kind, c.value);
      said.set(c.id, sentWords(done));
      announce(`Code sent to ${c.value}.`);
      draw(`code-${c.id}`);
    } catch (error) {
      said.set(c.id, notice("error", error.message));
      draw(`code-${c.id}`);
    }
  }

  async function remove(c) {
    try {
      const { contacts: rest } = await api(`${base}/contacts/${c.id}`, { method: "DELETE" });
      contacts = rest;
      said.delete(c.id);
      replace(message, notice("ok", `${CONTACT_KINDS[c.kind]} ${c.value} removed.`));
      announce(`${CONTACT_KINDS[c.kind]} ${c.value} removed.`);
      draw();
      message.focus();
    } catch (error) {
      replace(message, notice("error", error.message));
      message.focus();
    }
  }

  async function submit(e) {
    e.preventDefault();
    if (!value.value.trim()) {
      replace(message, notice("error", "Type an email address or a mobile number."));
      value.focus();
      return;
    }
    add.disabled = true;
    try {
      const done = await send(kind.value, value.value.trim());
      const known = contacts.some((x) => x.id === done.id);
      contacts = known ? contacts.map((x) => (x.id === done.id ? done : x)) : [...contacts, done];
      said.set(done.id, sentWords(done));
      replace(message);
      value.value = "";
      announce(done.verified_at || done.opted_out_at ? "Contact point added." : `Code sent to ${done.value}.`);
      draw(done.verified_at || done.opted_out_at ? null : `code-${done.id}`);
      if (done.verified_at || done.opted_out_at) value.focus();
    } catch (error) {
      replace(message, notice("error", error.message));
      value.focus();
    } finally {
      add.disabled = false;
    }
  }

  draw();
  return h("div", { class: "contacts-part" },
    h("h3", { id: "contacts-h" }, "Contact points"),
    h("p", { class: "hint" }, "Each is verified with a code before the pharmacy writes to it."),
    list,
    mayChange()
      ? h("form", { class: "add-contact", "aria-labelledby": "add-contact-h", onsubmit: submit },
        h("h4", { id: "add-contact-h", class: "visually-hidden" }, "Add a contact point"),
        h("div", { class: "fields" },
          h("div", {}, h("label", { for: "contact-kind" }, "Kind"), kind),
          h("div", { class: "wide-field" }, h("label", { for: "contact-value" }, "Email address or mobile number"), value)),
        h("div", { class: "actions" }, add))
      : null,
    message);
}

// -- consent -----------------------------------------------------------------------------------

function consentPart(base, consent) {
  const message = h("div", { class: "form-message" });
  const kinds = Object.keys(consent);

  async function change(box, kind, channel) {
    const allowed = box.checked;
    box.disabled = true;
    try {
      await api(`${base}/consent`, { method: "PUT", body: { switches: [{ kind, channel, allowed }] } });
      const words = `${KIND_LABELS[kind] || kind} by ${channel === "sms" ? "SMS" : "email"}: ${allowed ? "on" : "off"}.`;
      replace(message, notice("ok", words));
    } catch (error) {
      box.checked = !allowed;
      replace(message, notice("error", error.message));
    } finally {
      box.disabled = false;
      // disabled while saving, the switch lost the focus: it gets it back unless the user moved on
      if (document.activeElement === document.body || document.activeElement === box) box.focus();
    }
  }

  return h("div", { class: "consent-part" },
    h("h3", { id: "consent-h" }, "Notification consent"),
    h("p", { class: "hint" }, "What the patient agreed to be told, per channel. On unless switched off."),
    h("table", { class: "queue consent", "aria-labelledby": "consent-h" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Notification"), CHANNELS.map(([, t]) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, kinds.map((kind) => h("tr", { dataset: { kind } },
        h("th", { scope: "row" }, KIND_LABELS[kind] || kind),
        CHANNELS.map(([channel, channelText]) => {
          const box = h("input", {
            type: "checkbox", checked: consent[kind][channel] !== false, disabled: !mayChange(),
            "aria-label": `${KIND_LABELS[kind] || kind} by ${channelText}`,
          });
          box.addEventListener("change", () => change(box, kind, channel));
          return h("td", {}, box);
        }))))),
    message);
}

// -- adherence ---------------------------------------------------------------------------------

export function adherenceTable(items, label, { withPatient = false } = {}) {
  const heads = [withPatient ? "Patient" : null, "Class", "PDC", "Days covered / in period", "Eligible", "Adherent"].filter(Boolean);
  return h("table", { class: "queue adherence", "aria-label": label },
    h("thead", {}, h("tr", {}, heads.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, items.map((a) => h("tr", { dataset: { patient: a.patient_id, drugClass: a.drug_class }, class: a.adherent ? "" : "below" },
      withPatient ? h("td", {}, h("a", { href: `#/patients/${a.patient_id}` }, patientLabel(a.patient)),
        h("div", { class: "sub" }, a.patient.date_of_birth ? `born ${day(a.patient.date_of_birth)}` : "")) : null,
      h("td", {}, CLASS_LABELS[a.drug_class] || a.drug_class, h("div", { class: "sub" }, a.drugs.join(", "))),
      h("td", { class: "pdc" }, `${a.pdc_percent.toFixed(1)} %`),
      h("td", {}, `${a.days_covered} / ${a.days_in_period}`, h("div", { class: "sub" }, `from ${day(a.index_date)}`)),
      h("td", {}, a.eligible ? "Yes" : h("span", { title: "Fills on fewer than two dates" }, "No")),
      h("td", {}, a.adherent ? h("span", { class: "badge verified" }, "Yes") : h("span", { class: "badge warning" }, "Below 80 %"))))));
}

function patientLabel(p) {
  return [p.last, p.first].filter(Boolean).join(", ") || "Unknown";
}

export function patientAdherenceCard(patientId) {
  const card = h("section", { class: "card", "aria-labelledby": "adh-h" },
    h("h2", { id: "adh-h" }, "Adherence"), spinner("Loading the adherence…"));
  async function load() {
    try {
      const found = await api(`/patients/${patientId}/adherence`);
      replace(card, h("h2", { id: "adh-h" }, "Adherence"),
        h("p", { class: "hint" }, `Proportion of days covered, ${day(found.period_from)} to ${day(found.period_to)} (adherent at ${found.threshold_percent} % or more).`),
        found.items.length ? adherenceTable(found.items, "Adherence by class")
          : h("p", { class: "hint" }, "No counted fill of a measured class (statins, RAS antagonists, diabetes medications) this year."));
    } catch (error) {
      replace(card, h("h2", { id: "adh-h" }, "Adherence"), problemBox(error, load));
    }
  }
  load();
  return card;
}
