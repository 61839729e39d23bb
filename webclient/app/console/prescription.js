// One prescription: who, what, the findings by severity with their evidence, and the
// verification actions its state and claim allow (claim, release, approve with an override
// reason per warning, reject, ask the prescriber, request a renewal, note); its history.

import { api, loadInto } from "../lib/api.js";
import { currentUser } from "../lib/auth.js";
import { h, replace, fact, when, day, personName, titleCase, announce } from "../lib/dom.js";
import { markers, stateBadge, claimText, scheduleLabel, DO_NOT_FILL } from "./queue.js";
import { startConsult } from "./consults.js";
import { changeRequestForm, renewalForm, requestLabel } from "./requests.js";

const SEVERITIES = [
  ["hard_stop", "Hard stops", "Approval is blocked until these are resolved with the prescriber."],
  ["warning", "Warnings", "Each needs your reason to approve."],
  ["info", "For information", ""],
];
const STALE_POLL_MS = 2500;
// the states whose findings are checked again when the patient's picture changes (a decided
// or cancelled prescription keeps the findings it was decided on)
const REVIEWABLE = new Set(["awaiting_review", "in_review", "clarification_requested"]);
const rechecking = (rx) => rx.findings_stale && REVIEWABLE.has(rx.state);
// while a message to the prescriber is on its way, its delivery state is looked at again
const OUTBOX_POLL_MS = 5000;
// how often an open prescription looks for changes made elsewhere (a CancelRx, a colleague)
const REVISION_POLL_MS = 3000;
const DELIVERY_WORDS = {
  pending: "waiting to be sent",
  sending: "being sent",
  retrying: "failed, will be tried again",
  delivered: "delivered",
  dead: "not delivered: an operator must look at it",
};
const UNFINISHED = new Set(["pending", "sending", "retrying"]);
const VERIFYING = new Set(["received", "checking", "awaiting_review", "in_review", "clarification_requested"]);
const UNITS = { C48542: "tablets", C48480: "capsules", C28254: "mL", C48155: "g", C64933: "each", C48524: "patches", C38046: "" };
const EVIDENCE_WORDS = {
  npi: "NPI", dea_number: "DEA number", dea: "DEA number", ndc: "NDC", rxcui: "RxNorm code",
  last_name: "Prescriber's last name", schedule: "Schedule", message_schedule: "Schedule in the message",
  reference_schedule: "Reference schedule", refills: "Refills", limit: "Limit", written_date: "Written",
  days_supply: "Days supply", quantity: "Quantity", drug: "Drug", other: "Active medication",
  interaction: "Interaction", allergy: "Allergy", ingredient: "Ingredient", ingredients: "Ingredients",
  classes: "Classes", class: "Class", daily_dose: "Daily dose", max_daily_dose: "Maximum daily dose",
  contradiction: "Contradiction", description: "Description", sig_drug: "Drug in the directions",
  dose_form: "Dose form", quantity_unit: "Quantity unit code", quantity_unit_name: "Quantity unit",
  coded_form: "Coded dose form code", coded_form_name: "Coded dose form",
  description_strength: "Strength in the description", coded_strength: "Coded strength",
  active_drug: "Active medication", pending_drug: "Pending prescription (not yet verified)",
  pending_received_at: "Pending since", pending_compared: "Open prescriptions compared",
  pending_omitted: "Open prescriptions not compared",
};
// evidence that names another prescription: shown as a link to it
const PRESCRIPTION_LINKS = { active_prescription_id: "Open the active prescription", pending_prescription_id: "Open the pending prescription" };
const REJECT_REASONS = {
  not_clinically_appropriate: "Not clinically appropriate", drug_interaction: "Drug interaction", allergy: "Allergy",
  dose: "Dose", therapeutic_duplication: "Therapeutic duplication", controlled_substance_rules: "Controlled-substance rules",
  expired: "Expired", prescriber_not_verified: "Prescriber not verified", patient_not_verified: "Patient not verified",
  other: "Other",
};

// LOINC codes of the measurements a prescriber sends most (Observation/Measurement/VitalSign)
const VITAL_SIGNS = {
  "29463-7": "Weight", "3141-9": "Weight", "8302-2": "Height", "3137-7": "Height", "8287-5": "Head circumference",
  "39156-5": "BMI", "8310-5": "Temperature", "8867-4": "Heart rate",
};
const PRIOR_AUTHORIZATION = { A: "Approved", D: "Denied", F: "Deferred", N: "Not required", R: "Requested" };

const scheduleCode = (medication) => medication?.dea_schedule?.code ?? medication?.dea_schedule ?? null;

function evidenceItems(evidence) {
  return Object.entries(evidence || {}).filter(([, value]) => value !== null && value !== "").map(([key, value]) => {
    if (PRESCRIPTION_LINKS[key]) return h("li", {}, h("a", { href: `#/rx/${value}` }, PRESCRIPTION_LINKS[key]));
    if (key === "pending_received_at") return h("li", {}, `${EVIDENCE_WORDS[key]}: ${when(value)}`);
    const label = EVIDENCE_WORDS[key] || titleCase(key.replaceAll("_", " "));
    const shown = Array.isArray(value) ? value.join(", ") : value && typeof value === "object" ? JSON.stringify(value) : String(value);
    return h("li", {}, `${label}: ${shown}`);
  });
}

function findingCard(f) {
  return h("div", { class: `finding ${f.severity}` },
    h("div", {}, h("strong", {}, f.message)),
    h("div", { class: "code" }, f.code),
    Object.keys(f.evidence || {}).length ? h("ul", { "aria-label": "Evidence" }, evidenceItems(f.evidence)) : null);
}

function findingsCard(rx) {
  const groups = SEVERITIES.map(([severity, title, hint]) => {
    const found = rx.findings.filter((f) => f.severity === severity);
    if (!found.length) return null;
    return h("section", {}, h("h3", {}, h("span", { class: `badge ${severity}` }, `${found.length}`), " ", title),
      hint ? h("p", { class: "hint" }, hint) : null, found.map(findingCard));
  });
  const waiting = ["received", "checking"].includes(rx.state);
  return h("section", { class: "card findings", "aria-labelledby": "findings-h" },
    h("h2", { id: "findings-h" }, "Findings"),
    rechecking(rx)
      ? h("div", { class: "notice info", role: "status" },
        "The patient's picture changed since these findings (a prescription arrived or left, or an allergy was recorded): the checks are running again. Approval waits for the new findings.")
      : null,
    rx.findings.length ? groups : h("p", { class: "hint" }, waiting ? "The checks are still running." : "The checks found nothing to review."));
}

const ANSWER_WORDS = {
  Approved: "approved", ApprovedWithChanges: "approved with changes", Validated: "validated (authorization confirmed)",
  Replace: "replaced with a new prescription", Denied: "DENIED",
};
const REQUEST_WORDS = { RxChangeResponse: "change request", RxRenewalResponse: "renewal request" };
const rxLink = (id, text) => h("a", { href: `#/rx/${id}` }, text);

function reasonItems(answer) {
  const reasons = answer.reasons.map((r) => (r.text ? `${r.text} (${r.code})` : `Reason code ${r.code}`));
  if (answer.text) reasons.push(`“${answer.text}”`);
  return reasons.length ? h("ul", { class: "reasons" }, reasons.map((r) => h("li", {}, r))) : h("p", { class: "reasons" }, "No reason given.");
}

// the prescriber's latest denial: the pharmacist decides what happens next, and must see why
function denialBanner(rx) {
  const last = rx.answers?.at(-1);
  if (!last || last.response !== "Denied") return null;
  // asked again since: the denial was acted on, its answer is in the answers card
  const requests = (rx.outbound || []).filter((m) => m.message_type === "RxChangeRequest" || m.message_type === "RxRenewalRequest");
  if (requests.length && !requests.at(-1).answer) return null;
  return h("div", { class: "banner denial", role: "alert" },
    h("strong", {}, "PRESCRIBER DENIED"),
    ` the ${REQUEST_WORDS[last.transaction] || "request"} (${when(last.at)}). `,
    last.transaction === "RxChangeResponse" ? "The prescription is back in the queue as written: decide with this in mind." : "No renewal was authorised.",
    reasonItems(last));
}

// the links a prescriber's answer made: replaced by, replaces, renewal of, renewed by
function linkBanners(rx) {
  const banners = (rx.replaced_by || []).map((l) => h("div", { class: "banner link", role: "status" },
    h("strong", {}, l.kind === "renewal" ? "RENEWED" : "REPLACED"),
    l.kind === "renewal" ? "A renewal authorised by the prescriber: " : "The prescriber approved a change; this prescription is replaced by ",
    rxLink(l.id, `prescription ${l.id.slice(0, 8)}…`), ` (${l.state}).`));
  const r = rx.replaces;
  if (r) banners.unshift(h("div", { class: "banner link", role: "status" },
    h("strong", {}, r.kind === "renewal" ? "RENEWAL" : "CHANGED PRESCRIPTION"),
    r.kind === "renewal" ? "Renewal of " : "Replaces ", rxLink(r.id, `prescription ${r.id.slice(0, 8)}…`), ` (${r.state}), as the prescriber answered.`));
  return banners;
}

// the prescriber cancelled it (a CancelRx; one replaced by a change says so in its link banner)
function cancelBanner(rx) {
  if (rx.state !== "cancelled" || rx.replaced_by?.length) return null;
  const step = rx.history?.findLast((s) => s.to === "cancelled");
  return h("div", { class: "banner", role: "alert", id: "cancelled-banner" }, h("strong", {}, "CANCELLED"),
    `The prescriber cancelled this prescription${step ? ` (${when(step.at)})` : ""}: it must not be filled.`);
}

// what must be impossible to miss: a test message, a prescription cancelled, not to be filled or
// on hold, the prescriber's denial, and the prescription this one replaces or is replaced by
export function banners(rx) {
  const hold = DO_NOT_FILL[rx.medication?.do_not_fill];
  return [
    cancelBanner(rx),
    rx.test ? h("div", { class: "banner test", role: "alert" }, h("strong", {}, "TEST MESSAGE"),
      " Sent as a test by the prescriber's system (Header/TestMessage): never to be filled. It is kept as received and is not in the queue.") : null,
    hold ? h("div", { class: "banner donotfill", role: "alert" }, h("strong", {}, hold[0]), " ", hold[1]) : null,
    denialBanner(rx),
    ...linkBanners(rx),
  ];
}

// every answer the prescriber gave to the hub's requests about this prescription
function answersCard(rx) {
  if (!rx.answers?.length) return null;
  return h("section", { class: "card", "aria-labelledby": "answers-h" },
    h("h2", { id: "answers-h" }, "Prescriber's answers"),
    h("ol", { class: "history" }, rx.answers.map((a) => h("li", {},
      h("strong", {}, `${REQUEST_WORDS[a.transaction] || a.transaction}: ${ANSWER_WORDS[a.response] || a.response}`),
      a.reference_number ? ` · prior authorization ${a.reference_number}` : null,
      a.response === "Denied" ? reasonItems(a) : a.text ? h("div", {}, `“${a.text}”`) : null,
      a.new_prescription_id ? h("div", {}, rxLink(a.new_prescription_id, "Open the new prescription")) : null,
      h("div", { class: "sub" }, `${when(a.at)} · answers MessageID ${a.request_message_id}`)))));
}

const dateOf = (value) => (value?.datetime ? when(value.datetime) : day(value?.date));

function dueText(d) {
  const codes = [d.service_reason_code, d.professional_service_code, d.service_result_code].filter(Boolean).join(" → ");
  const agents = (d.co_agents || []).map((a) => a.description || `${a.qualifier} ${a.code}`);
  return [codes, agents.length ? `with ${agents.join(", ")}` : null,
    d.clinical_significance_code ? `significance ${d.clinical_significance_code}` : null, d.acknowledgement_reason].filter(Boolean).join(" · ");
}

function compoundFacts(compound) {
  if (!compound) return null;
  return fact(`Compound (form ${compound.dosage_form_code})`, h("ul", { class: "plain", "aria-label": "Compound ingredients" },
    compound.ingredients.map((i) => h("li", {}, i.description, " — ",
      `${i.quantity_value} ${UNITS[i.quantity_unit_code] ?? i.quantity_unit_code}`.trim(),
      i.item_code ? h("span", { class: "sub" }, ` (${i.item_qualifier === "ND" ? "NDC" : i.item_qualifier} ${i.item_code})`) : null))));
}

function medicationCard(rx) {
  const m = rx.medication || {};
  const unit = UNITS[m.quantity?.unit_code] ?? "";
  const product = m.product_code ? `${m.product_code.qualifier === "ND" ? "NDC" : m.product_code.qualifier} ${m.product_code.code}` : null;
  const rxnorm = m.drug_db_code ? `RxNorm ${m.drug_db_code.code}` : null;
  return h("section", { class: "card", "aria-labelledby": "med-h" },
    h("h2", { id: "med-h" }, "Medication"),
    h("dl", { class: "facts" },
      fact("Drug", m.drug_description),
      fact("Codes", [product, rxnorm].filter(Boolean).join(" · ")),
      fact("Directions (sig)", m.sig?.text),
      fact("Quantity", m.quantity ? `${m.quantity.value} ${unit}`.trim() : null),
      fact("Days supply", m.days_supply),
      fact("Refills", m.number_of_refills ?? 0),
      fact("Substitutions", m.substitutions === "0" ? "Allowed" : m.substitutions === "1" ? "Dispense as written" : m.substitutions),
      fact("Schedule", scheduleCode(m) ? scheduleLabel(scheduleCode(m)) : "Not controlled"),
      fact("Written", day(m.written_date?.date || rx.written_date)),
      m.need_no_later_than ? fact("Needed by", dateOf(m.need_no_later_than.date),
        m.need_no_later_than.reasons?.length ? ` — ${m.need_no_later_than.reasons.join("; ")}` : null) : null,
      compoundFacts(m.compound),
      m.prior_authorization ? fact("Prior authorization", [m.prior_authorization.number,
        PRIOR_AUTHORIZATION[m.prior_authorization.status] ?? m.prior_authorization.status].filter(Boolean).join(" · ")) : null,
      rx.prior_authorization ? fact("Prior authorization (confirmed by the prescriber)", rx.prior_authorization) : null,
      m.drug_use_evaluations?.length ? fact("Drug use evaluation", m.drug_use_evaluations.map(dueText).join("; ")) : null,
      m.delivery_request ? fact("Delivery", m.delivery_request) : null,
      m.note ? fact("Prescriber's note", m.note) : null));
}

const PRACTITIONER_SIGNATURE = {
  verified: "Arrived and verified (digest, signature, certificate chain, revocation)",
  failed: "Arrived and FAILED verification",
  indicator: "Not sent: the signed indicator only (signed by an intermediary)",
  absent: "None arrived",
};

// EPCS on receipt (21 CFR 1311.210): what came of the prescriber's signature and the hub's
// signed archive of the record as received
function epcsCard(rx) {
  const e = rx.epcs;
  if (!e && !scheduleCode(rx.medication)) return null;
  return h("section", { class: "card", "aria-labelledby": "epcs-h" },
    h("h2", { id: "epcs-h" }, "Electronic signature (EPCS)"),
    e ? h("dl", { class: "facts" },
      fact("Verified on receipt", e.verified_on_receipt
        ? h("span", { class: "badge verified" }, "Yes")
        : h("span", { class: "badge hard_stop" }, "No")),
      fact("Prescriber's signature", PRACTITIONER_SIGNATURE[e.practitioner_signature] ?? e.practitioner_signature),
      e.reason && e.verification !== "verified" ? fact("Why", e.reason) : null,
      e.certificate_subject ? fact("Certificate", e.certificate_subject) : null,
      e.certificate_issuer ? fact("Issued by", e.certificate_issuer) : null,
      fact("Archived", `${when(e.archived_at)}, signed by the hub (key ${e.archive_key_id.slice(0, 16)}…)`),
      fact("Message SHA-256", h("code", {}, e.message_sha256)))
      : h("p", { class: "hint" }, "The record is verified and archived when the checks start."));
}

function address(a) {
  if (!a) return null;
  return [a.line1, a.line2, [a.city, a.state, a.postal_code].filter(Boolean).join(" ")].filter(Boolean).join(", ");
}

function measurements(observation) {
  if (!observation?.measurements?.length) return null;
  return fact("Measurements", h("ul", { class: "plain", "aria-label": "Measurements" },
    observation.measurements.map((m) => h("li", {}, `${VITAL_SIGNS[m.vital_sign] || `LOINC ${m.vital_sign}`} ${m.value} ${m.unit}`,
      m.date ? h("span", { class: "sub" }, ` on ${dateOf(m.date)}`) : null)),
    observation.notes ? h("li", { class: "sub" }, observation.notes) : null));
}

function facilityText(f) {
  if (!f) return null;
  const where = [f.unit && `unit ${f.unit}`, f.room && `room ${f.room}`, f.bed && `bed ${f.bed}`].filter(Boolean).join(", ");
  return [f.name, where, address(f.address)].filter(Boolean).join(" · ");
}

function partiesCards(rx) {
  const p = rx.patient || {};
  const d = rx.prescriber || {};
  const s = rx.details?.supervisor;
  const allergies = rx.details?.allergies || [];
  return [
    h("section", { class: "card", "aria-labelledby": "patient-h" },
      h("h2", { id: "patient-h" }, "Patient"),
      h("dl", { class: "facts" },
        fact("Name", personName(p.name)),
        fact("Born", day(p.date_of_birth?.date)),
        fact("Gender", { M: "Male", F: "Female", U: "Unknown" }[p.gender] || p.gender),
        fact("Address", address(p.address)),
        fact("Allergies (sent)", rx.details?.no_known_allergies ? "No known allergies" : allergies.map((a) => a.description || a.code || JSON.stringify(a)).join(", ")),
        measurements(rx.details?.observation),
        rx.details?.facility ? fact("Facility", facilityText(rx.details.facility)) : null),
      rx.patient_id
        ? h("div", { class: "actions" }, h("a", { class: "button secondary", href: `#/patients/${rx.patient_id}` }, "Open patient profile"))
        : h("p", { class: "hint" }, "Not linked to a profile yet (the checks link an exact match).")),
    h("section", { class: "card", "aria-labelledby": "prescriber-h" },
      h("h2", { id: "prescriber-h" }, "Prescriber"),
      h("dl", { class: "facts" },
        fact("Name", personName(d.name)),
        d.kind === "veterinarian" ? fact("Kind", "Veterinarian") : null,
        fact("NPI", d.npi),
        fact("DEA", d.dea_number),
        fact("State licence", d.state_license_number),
        fact("Phone", (d.communication_numbers || []).map((c) => c.number).join(", ")),
        fact("Address", address(d.address)),
        s ? fact("Supervisor", [personName(s.name), ...(s.identifiers || []).map(([k, v]) => `${k} ${v}`)].filter(Boolean).join(" · ")) : null)),
  ];
}

function actorLabel(step) {
  if (step.actor_name) return step.actor_name;
  const [kind, name] = step.actor.split(":");
  return { client: "the prescriber's system", system: name === "checks" ? "the checks" : "the hub" }[kind] || step.actor;
}

function historyCard(rx) {
  return h("section", { class: "card", "aria-labelledby": "history-h" },
    h("h2", { id: "history-h" }, "History"),
    h("ol", { class: "history" }, rx.history.map((t) =>
      h("li", {}, h("strong", {}, t.from ? `${t.from} → ${t.to}` : t.to), " ", t.reason,
        h("div", { class: "sub" }, `${when(t.at)} · ${actorLabel(t)}`)))),
    rx.notes.length ? [h("h3", {}, "Notes"), rx.notes.map((n) =>
      h("div", { class: "note" }, h("p", {}, n.text), h("div", { class: "sub" }, `${n.author || "—"} · ${when(n.at)}`)))] : null);
}

// what the hub sends the prescriber about this prescription (an RxChangeRequest when a
// pharmacist asks something, an RxRenewalRequest for a renewal), what each asked, and how each
// delivery stands
function outboundCard(rx) {
  if (!rx.outbound?.length) return null;
  const asked = new Map((rx.requests || []).map((r) => [r.message_id, r]));
  return h("section", { class: "card", "aria-labelledby": "outbound-h" },
    h("h2", { id: "outbound-h" }, "Messages to the prescriber"),
    h("ol", { class: "history" }, rx.outbound.map((m) =>
      h("li", {},
        h("strong", {}, m.message_type), " ",
        asked.has(m.message_id) ? h("span", { class: "request-kind" }, requestLabel(asked.get(m.message_id)), " ") : null,
        h("span", { class: `badge delivery ${m.state}` }, DELIVERY_WORDS[m.state] || m.state),
        m.answer ? [" ", h("span", { class: `badge ${m.answer.response === "Denied" ? "hard_stop" : "verified"}` },
          `answered: ${ANSWER_WORDS[m.answer.response] || m.answer.response}`)] : null,
        h("div", { class: "sub" }, [
          `${when(m.created_at)} · ${m.attempts} attempt${m.attempts === 1 ? "" : "s"}`,
          m.delivered_at ? ` · delivered ${when(m.delivered_at)}` : "",
          m.reply ? ` · receipt ${m.reply.transaction}${m.reply.code ? " " + m.reply.code : ""}`
            + (m.reply.received_later ? ` later (${when(m.reply.at)})` : "") : "",
          m.last_error ? ` · ${m.last_error}` : "",
          m.next_attempt_at && m.state === "retrying" ? ` · next try ${when(m.next_attempt_at)}` : "",
        ].join("")),
        h("div", { class: "sub" }, `MessageID ${m.message_id}`)))));
}

function reasonForm(id, title, reasons, submitLabel, onSubmit) {
  const select = h("select", { id: `${id}-code`, required: true },
    h("option", { value: "" }, "Choose a reason…"),
    Object.entries(reasons).map(([value, label]) => h("option", { value }, label)));
  const text = h("textarea", { id: `${id}-text`, required: true, maxLength: 1000, placeholder: "What the prescriber should know" });
  return h("form", { class: "card", onsubmit: (e) => { e.preventDefault(); onSubmit({ reason_code: select.value, text: text.value.trim() }); } },
    h("h3", {}, title),
    h("label", { for: `${id}-code` }, "Reason"), select,
    h("label", { for: `${id}-text` }, "Message"), text,
    h("div", { class: "actions" }, h("button", { type: "submit" }, submitLabel)));
}

export async function prescriptionView(el, id) {
  let rx = await loadInto(el, `/prescriptions/${id}`, "prescription");
  if (!rx) return;
  let panel = null; // the open action form: approve, reject, clarify, renew
  // the ask and renewal forms are made once per opening: polling re-renders the view, and
  // what the pharmacist typed (a drug, the directions) must stay
  let made = {};

  async function load() {
    rx = await api(`/prescriptions/${id}`);
    render();
  }

  // while the checks run again, look for the new findings (as long as this view is shown)
  let watching = 0;
  function watchStale() {
    clearTimeout(watching);
    const sending = rx.outbound?.some((m) => UNFINISHED.has(m.state));
    const wait = rechecking(rx) ? STALE_POLL_MS : sending && !panel ? OUTBOX_POLL_MS : 0;
    // a delivery's progress never takes the focus from what the pharmacist is typing
    const typing = () => !rechecking(rx) && el.contains(document.activeElement) && /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
    if (wait) watching = setTimeout(() => {
      if (!el.isConnected) return;
      if (typing()) watchStale(); else load().catch(() => watchStale());
    }, wait);
  }

  // the prescription changing under the pharmacist's eyes (the prescriber cancels it, a
  // colleague claims it): a cheap revision is polled, the prescription read again when it moves
  let revision = null;
  async function watchRevision() {
    if (!el.isConnected) return;
    try {
      const now = await api(`/prescriptions/${id}/revision`);
      const moved = now.state !== rx.state;
      const typing = el.contains(document.activeElement) && /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
      if (revision === null && !moved) revision = now.revision; // the baseline
      else if (now.revision !== revision && (moved || !typing)) {
        revision = now.revision;
        if (moved && ["cancelled", "rejected"].includes(now.state)) { panel = null; made = {}; }
        await load();
        if (moved && now.state === "cancelled") {
          flash("The prescriber cancelled this prescription: it must not be filled.", "error");
          announce("The prescriber cancelled this prescription.");
        } else if (moved) {
          flash(`This prescription is now ${now.state.replaceAll("_", " ")}.`, "ok");
        }
      }
    } catch (error) {
      // offline or signed out: the next poll tries again (the page says so on its own)
    }
    if (el.isConnected) setTimeout(watchRevision, REVISION_POLL_MS);
  }

  async function act(name, body, done) {
    try {
      await api(`/prescriptions/${id}/${name}`, { method: "POST", body });
      panel = null;
      made = {};
      revision = null; // this change is the pharmacist's own: seen already
      announce(done);
      await load();
      flash(done, "ok");
      return true;
    } catch (error) {
      flash(error.message, "error");
      return false;
    }
  }

  const message = h("div", { "aria-live": "assertive" });
  function flash(text, kind) {
    replace(message, h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text));
  }

  function approveForm() {
    const warnings = rx.findings.filter((f) => f.severity === "warning");
    const fields = warnings.map((f, i) => {
      const area = h("textarea", { id: `override-${i}`, required: true, maxLength: 1000, dataset: { code: f.code } });
      return h("div", { class: "override" }, h("label", { for: `override-${i}` }, `Reason to override ${f.code}`),
        h("p", { class: "hint" }, f.message), area);
    });
    return h("form", { class: "card", onsubmit: (e) => {
      e.preventDefault();
      const overrides = Object.fromEntries([...e.target.querySelectorAll("textarea")].map((t) => [t.dataset.code, t.value.trim()]));
      // the findings this form was made from: a re-check since then is refused, not overridden
      act("approve", { overrides, findings_basis: rx.findings_basis }, "Approved.");
    } },
    h("h3", {}, "Approve"),
    warnings.length ? fields : h("p", {}, "No warnings to override."),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Approve prescription")));
  }

  function actions() {
    const me = currentUser()?.sub;
    const mine = rx.claim?.user_id === me;
    const hardStops = rx.findings.some((f) => f.severity === "hard_stop");
    const pharmacist = currentUser()?.role === "pharmacist";
    const buttons = [];
    const toggle = (name) => () => { panel = panel === name ? null : name; made = {}; render(); };
    if (rx.state === "awaiting_review" || (rx.state === "in_review" && !rx.claim)) {
      buttons.push(h("button", { type: "button", onclick: () => act("claim", {}, "Claimed: it is yours to review.") }, "Claim"));
    }
    if (rx.state === "in_review" && mine) {
      buttons.push(
        h("button", { type: "button", disabled: hardStops || !pharmacist || rx.findings_stale, onclick: toggle("approve"),
          title: hardStops ? "Hard stops block approval" : rx.findings_stale ? "The checks are running again" : "" }, "Approve…"),
        h("button", { type: "button", class: "secondary", onclick: toggle("reject") }, "Reject…"),
        h("button", { type: "button", class: "secondary", onclick: toggle("clarify") }, "Ask the prescriber…"),
        h("button", { type: "button", class: "quiet", onclick: () => act("release", {}, "Released back to the queue.") }, "Release"));
    }
    if (pharmacist && rx.renewal?.allowed) {
      buttons.push(h("button", { type: "button", class: "secondary", onclick: toggle("renew"), "aria-expanded": panel === "renew" ? "true" : "false" },
        "Request renewal…"));
    }
    if (rx.patient_id && pharmacist) {
      buttons.push(h("button", { type: "button", class: "secondary", onclick: () => startConsult(rx.patient_id, rx.id) }, "Video consult…"));
    }
    const why = rx.state === "in_review" && !mine && rx.claim
      ? h("p", { class: "hint" }, `${claimText(rx.claim)} until ${when(rx.claim.until)}.`)
      : hardStops && rx.state === "in_review" ? h("p", { class: "hint" }, "Approval is blocked by hard stops: reject it or ask the prescriber.") : null;
    const forms = {
      approve: approveForm,
      reject: () => reasonForm("reject", "Reject", REJECT_REASONS, "Reject prescription", (b) => act("reject", b, "Rejected; the prescriber is told.")),
      clarify: () => (made.clarify ||= changeRequestForm(rx, (b, done) => act("clarify", b, done))),
      renew: () => (made.renew ||= renewalForm(rx, (b, done) => act("request_renewal", b, done))),
    };
    // why no renewal may be asked (the prescriber prohibited it, or the prescription ended
    // without approval); not while it is still being verified, where it would only be noise
    const renewal = rx.renewal && !rx.renewal.allowed && !rx.test && !VERIFYING.has(rx.state)
      ? h("p", { class: "hint", id: "renewal-why" }, `Renewal request not available: ${rx.renewal.reason}`)
      : null;
    // a renewal already asked for: said beside the button, so it is not asked twice by mistake
    const renewed = (rx.requests || []).filter((r) => r.message_type === "RxRenewalRequest").at(-1);
    const lastRenewal = renewed && rx.renewal?.allowed
      ? h("p", { class: "hint" }, `A renewal was requested ${when(renewed.at)} by ${renewed.requested_by || "a pharmacist"}.`)
      : null;
    return h("section", { class: "card", "aria-labelledby": "actions-h" },
      h("h2", { id: "actions-h" }, "Verification"),
      h("p", {}, stateBadge(rx.state), " ", claimText(rx.claim)),
      buttons.length ? h("div", { class: "actions" }, buttons) : h("p", { class: "hint" }, "No verification step is open in this state."),
      why, renewal, lastRenewal, panel && forms[panel] ? forms[panel]() : null, note);
  }

  // made once: the view re-renders after every action, and a note being typed must stay
  const note = h("form", { class: "actions", onsubmit: (e) => {
    e.preventDefault();
    const field = e.target.elements.note;
    const text = field.value.trim();
    if (text) act("notes", { text }, "Note added.").then((done) => { if (done) field.value = ""; });
  } }, h("label", { for: "note", class: "visually-hidden" }, "Add a note"),
  h("input", { type: "text", id: "note", name: "note", maxLength: 1000, placeholder: "Add a note for colleagues", class: "grow" }),
  h("button", { type: "submit", class: "secondary" }, "Add note"));

  function render() {
    replace(el,
      h("p", {}, h("a", { href: "#/queue" }, "← Back to the queue")),
      h("div", { class: "page-head" }, h("h1", {}, rx.medication?.drug_description || "Prescription"),
        markers({ urgent: rx.urgent, dea_schedule: scheduleCode(rx.medication), do_not_fill: rx.medication?.do_not_fill, test: rx.test }),
        stateBadge(rx.state),
        h("span", { class: "spacer" }), h("span", { class: "hint" }, `Received ${when(rx.received_at)} · ${rx.message_id}`)),
      banners(rx),
      message,
      h("div", { class: "split" },
        h("div", {}, findingsCard(rx), medicationCard(rx), epcsCard(rx), h("div", { class: "grid" }, partiesCards(rx))),
        h("div", {}, actions(), answersCard(rx), outboundCard(rx), historyCard(rx))));
    watchStale();
    // an opened form takes the focus, so keyboard and screen-reader users land in it
    if (panel) el.querySelector("#actions-h")?.parentElement.querySelector("form.card input, form.card textarea, form.card select")?.focus();
  }

  render();
  watchRevision();
}
