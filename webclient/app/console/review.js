// The match-review queue and profile merges (issue 17, docs/patients.md "Match review, merge
// and unmerge"). #/match-review: the prescriptions whose patient matched a profile weakly or
// ambiguously, oldest first, each beside its candidate profiles (which fields agree, which
// differ); a pharmacist links it to one, or makes a new profile from it. #/patients/<id>/merge:
// another profile merged into this one; #/merges/<id>: one merge, and its undoing. Technicians
// read; the hub refuses them the actions, and the buttons are a pharmacist's only.

import { api, loadInto } from "../lib/api.js";
import { currentUser } from "../lib/auth.js";
import { h, replace, announce, spinner, problemBox, emptyBox, when, day, personName } from "../lib/dom.js";

const FIELDS = [
  ["last_name", "Last name"],
  ["first_name", "First name"],
  ["date_of_birth", "Born"],
  ["gender", "Gender"],
  ["postal_code", "ZIP"],
];
const GENDER = { M: "Male", F: "Female", U: "Unknown" };
const KINDS = {
  prescriptions: "Prescriptions",
  consults: "Consults",
  notifications: "Notifications",
  contacts: "Contact points",
  contacts_kept: "Contact points kept by the merged profile (the kept one has the address)",
  allergies: "Allergy entries",
  preferences: "Preferences",
};
const isPharmacist = () => currentUser()?.role === "pharmacist";

// a patient's five matched fields, as received (the prescription's) or as profiled
function fields(patient) {
  const name = patient.name || {};
  return {
    last_name: name.last || "—",
    first_name: name.first || "—",
    date_of_birth: day(patient.date_of_birth?.date || patient.date_of_birth),
    gender: GENDER[patient.gender] || patient.gender || "—",
    postal_code: (patient.postal_code || patient.address?.postal_code || "—").slice(0, 5),
  };
}

function comparison(item) {
  const mine = fields(item.patient);
  const columns = item.candidates.map((c) => ({ c, values: fields({ ...c.demographics, date_of_birth: c.date_of_birth, gender: c.gender, postal_code: c.postal_code }) }));
  return h("table", { class: "queue compare" },
    h("caption", { class: "hint" }, "The prescription's patient beside each candidate profile"),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Field"),
      h("th", { scope: "col" }, "Prescription"),
      columns.map(({ c }, i) => h("th", { scope: "col" }, h("a", { href: `#/patients/${c.patient_id}` }, `Profile ${i + 1}`))))),
    h("tbody", {}, FIELDS.map(([key, label]) =>
      h("tr", {},
        h("th", { scope: "row" }, label),
        h("td", {}, mine[key]),
        columns.map(({ c, values }) => {
          const differs = c.differ.includes(key);
          return h("td", { class: differs ? "differs" : "agrees" }, values[key], " ",
            h("span", { class: differs ? "badge differs" : "badge agrees" }, differs ? "differs" : "agrees"));
        })))));
}

function reviewCard(item, done, merged) {
  const message = h("div", { class: "form-message", tabindex: "-1" });
  const buttons = [];
  async function act(path, body, label) {
    for (const b of buttons) b.disabled = true;
    replace(message);
    try {
      const linked = await api(`/match-review/${item.prescription_id}/${path}`, { method: "POST", body });
      const text = `${label}: checked again with the profile's whole picture.`;
      done(item, linked, text);
      announce(text);
    } catch (error) {
      replace(message, problemBox(error));
      message.focus();
      for (const b of buttons) b.disabled = false;
    }
  }
  if (isPharmacist()) {
    item.candidates.forEach((c, i) => buttons.push(h("button", {
      type: "button",
      onclick: () => act("link", { patient_id: c.patient_id }, `Linked to profile ${i + 1}`),
    }, `Link to profile ${i + 1}`)));
    buttons.push(h("button", { type: "button", class: "secondary", onclick: () => act("create", undefined, "New profile made") }, "Create a new profile"));
    // two profiles of one person (an ambiguous match): merged into the first, never by itself
    item.candidates.slice(1).forEach((c, i) => buttons.push(h("button", {
      type: "button",
      class: "secondary",
      onclick: async () => {
        for (const b of buttons) b.disabled = true;
        replace(message);
        try {
          const record = await api(`/patients/${item.candidates[0].patient_id}/merge`, { method: "POST", body: { merged_id: c.patient_id } });
          announce("The profiles were merged.");
          merged(record);
        } catch (error) {
          replace(message, problemBox(error));
          message.focus();
          for (const b of buttons) b.disabled = false;
        }
      },
    }, `Merge profile ${i + 2} into profile 1`)));
  }
  return h("section", { class: "card review-item", "aria-label": `${item.drug_description}, received ${when(item.received_at)}` },
    h("h2", {}, h("a", { href: `#/rx/${item.prescription_id}` }, item.drug_description)),
    h("p", { class: "hint" }, `${personName(item.patient.name)} · received ${when(item.received_at)} · ${item.match === "ambiguous" ? "matches several profiles equally well" : "matches a profile weakly"}`),
    item.candidates.length ? comparison(item) : h("p", { class: "hint" }, "No candidate profile now: create one."),
    buttons.length ? h("div", { class: "actions" }, buttons) : null,
    message);
}

export function matchReviewView(el) {
  const list = h("div", {});
  const status = h("p", { class: "status-line", role: "status" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Show more");
  let next = null;
  let shown = 0;

  function done(item, linked, text) {
    const card = list.querySelector(`[data-rx="${item.prescription_id}"]`);
    replace(card, h("div", { class: "notice ok", role: "status" }, text, " ",
      h("a", { href: `#/patients/${linked.patient_id}` }, "Open the profile")));
  }

  function merged(record) {
    shown = 0;
    load(null).then(() => list.prepend(h("div", { class: "notice ok", role: "status" }, "Profiles merged. ",
      h("a", { href: `#/merges/${record.id}` }, "The merge's record"))));
  }

  async function load(after) {
    more.disabled = true;
    try {
      const page = await api(`/match-review?limit=20${after ? `&after=${encodeURIComponent(after)}` : ""}`);
      if (!el.isConnected) return;
      if (!after) replace(list);
      for (const item of page.items) list.append(h("div", { dataset: { rx: item.prescription_id } }, reviewCard(item, done, merged)));
      shown += page.items.length;
      next = page.next;
      more.hidden = !next;
      if (!shown) replace(list, emptyBox("No prescription waits for a patient match."));
      replace(status, `${shown} prescription${shown === 1 ? "" : "s"} to match`);
    } catch (error) {
      replace(list, problemBox(error, () => load(null)));
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener("click", () => load(next));

  replace(el,
    h("div", { class: "page-head" }, h("h1", {}, "Match review")),
    h("p", { class: "hint" }, "Prescriptions whose patient shares a name and birth date with a profile but differs in gender or ZIP, or matches several profiles. Link each to the right profile, or make a new one; two profiles of one person are merged from a profile."),
    status, list, more);
  replace(list, spinner("Loading the queue…"));
  return load(null);
}

function movedList(moved) {
  const rows = Object.entries(KINDS).filter(([key]) => moved[key]).map(([key, label]) => h("li", {}, `${label}: ${moved[key]}`));
  return rows.length ? h("ul", {}, rows) : h("p", { class: "hint" }, "Nothing moved.");
}

export async function mergeView(el, id) {
  const patient = await loadInto(el, `/patients/${id}`, "patient");
  if (!patient) return;
  const merges = h("div", {}, spinner("Loading the merges…"));
  const message = h("div", { class: "form-message", tabindex: "-1" });
  const other = h("input", { id: "merge-other", size: "40", required: true, pattern: "[0-9a-fA-F-]{36}", autocomplete: "off", spellcheck: false });
  async function showMerges() {
    try {
      const found = await api(`/patients/${id}/merges`);
      replace(merges, found.items.length
        ? h("ul", {}, found.items.map((m) => h("li", {},
          h("a", { href: `#/merges/${m.id}` }, m.survivor_id === id ? "Merged into this profile" : "This profile merged into another"),
          ` · ${when(m.merged_at)}${m.unmerged_at ? ` · undone ${when(m.unmerged_at)}` : ""}`)))
        : h("p", { class: "hint" }, "No merge yet."));
    } catch (error) {
      replace(merges, problemBox(error, showMerges));
    }
  }
  async function merge(event) {
    event.preventDefault();
    replace(message);
    try {
      const done = await api(`/patients/${id}/merge`, { method: "POST", body: { merged_id: other.value.trim() } });
      replace(message, h("div", { class: "notice ok", role: "status" }, "Merged. ", h("a", { href: `#/merges/${done.id}` }, "The merge's record"), movedList(done.moved)));
      announce("The profiles were merged.");
      other.value = "";
      showMerges();
    } catch (error) {
      replace(message, problemBox(error));
    }
    message.focus();
  }
  replace(el,
    h("p", {}, h("a", { href: `#/patients/${id}` }, "← Back to the profile")),
    h("div", { class: "page-head" }, h("h1", {}, `Merge into ${personName(patient.name)}`)),
    h("p", { class: "hint" }, `This profile is kept (born ${day(patient.date_of_birth)}). The other profile's prescriptions, consults, messages, contact points, allergies and, when this one has none, preferences move here; it is kept, marked merged, and the merge can be undone.`),
    isPharmacist()
      ? h("form", { class: "card", "aria-label": "Merge a profile", onsubmit: merge },
        h("div", { class: "field" }, h("label", { for: "merge-other" }, "Profile ID to merge into this one"), other),
        h("div", { class: "actions" }, h("button", { type: "submit" }, "Merge")))
      : h("p", { class: "hint" }, "Only a pharmacist merges profiles."),
    message,
    h("section", { class: "card" }, h("h2", {}, "Merges of this profile"), merges));
  return showMerges();
}

export async function mergeRecordView(el, id) {
  const record = await loadInto(el, `/patient-merges/${id}`, "merge");
  if (!record) return;
  const message = h("div", { class: "form-message", tabindex: "-1" });
  const undo = h("button", { type: "button", onclick: unmerge }, "Undo this merge");
  async function unmerge() {
    undo.disabled = true;
    replace(message);
    try {
      const done = await api(`/patient-merges/${id}/unmerge`, { method: "POST" });
      replace(message, h("div", { class: "notice ok", role: "status" }, `Merge undone ${when(done.unmerged_at)}: every row it moved is back with the merged profile.`));
      undo.remove();
      announce("The merge was undone.");
    } catch (error) {
      replace(message, problemBox(error));
      undo.disabled = false;
    }
    message.focus();
  }
  replace(el,
    h("div", { class: "page-head" }, h("h1", {}, "Profile merge")),
    h("section", { class: "card" },
      h("dl", { class: "facts" },
        h("dt", {}, "Kept"), h("dd", {}, h("a", { href: `#/patients/${record.survivor_id}` }, "The kept profile")),
        h("dt", {}, "Merged"), h("dd", {}, h("a", { href: `#/patients/${record.merged_id}` }, "The merged profile")),
        h("dt", {}, "Merged on"), h("dd", {}, when(record.merged_at)),
        h("dt", {}, "Undone"), h("dd", {}, record.unmerged_at ? when(record.unmerged_at) : "No")),
      h("h2", {}, "Moved"), movedList(record.moved),
      !record.unmerged_at && isPharmacist() ? h("div", { class: "actions" }, undo) : null),
    message);
}
