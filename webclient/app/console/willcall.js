// Will-call and pick-up: the ready fills by bin (a checked fill not yet in a bin gets one
// here), and one pick-up: who collected it (the patient, or a named other person), the
// identity check (required for a controlled substance), the collector's signature drawn on
// the screen, the offer to counsel (accepted, refused, or done by video in a consult), then
// the hand-over. The hub refuses what the law needs and is missing; this page asks for it first.

import { api, loadInto } from "../lib/api.js";
import { h, replace, when, ago, fact, personName, announce, emptyBox } from "../lib/dom.js";
import { signaturePad } from "../lib/capture.js";
import { markers } from "./queue.js";
import { banners } from "./prescription.js";
import { shippingCard } from "./shipping.js";
import { polled, fillBadge, fillNumber, rxNumber, controlledBadge, historyList, rxSummary, labelLookup, staffText, rowKey } from "./fills.js";

const binOrder = (a, b) => (a.bin || "").localeCompare(b.bin || "", undefined, { numeric: true });

async function putInBin(fillId, input) {
  const bin = input.value.trim();
  if (!bin) return;
  try {
    await api(`/fills/${fillId}/bin`, { method: "POST", body: { bin } });
    announce(`In bin ${bin}.`);
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  } catch (error) {
    input.closest("td").append(h("div", { class: "notice error", role: "alert" }, error.message));
  }
}

// the loaded rows by bin (those not in a bin yet first); a page "Load more" brings is sorted in
export function willCallView(el) {
  return polled(el, {
    title: "Will-call",
    hint: "Checked fills waiting to be collected, by bin.",
    queues: { ready: ["ready", "ready-more", ["fill", "fills"]] },
    draw: async ({ ready }) => {
      if (!ready.rows.length) return emptyBox("No fill waits for pick-up.");
      const unbinned = ready.rows.filter((f) => !f.bin);
      const binned = ready.rows.filter((f) => f.bin).sort(binOrder);
      return [h("table", { class: "queue", "aria-label": "Ready fills" },
        h("thead", {}, h("tr", {}, ["Bin", "Medication", "Rx", "Ready since", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, [...unbinned, ...binned].map((f) => {
          const field = h("input", { type: "text", id: `bin-${f.id}`, maxLength: 20, placeholder: "e.g. A3", class: "bin-input" });
          return h("tr", { dataset: { id: rowKey(f) } },
            h("td", {}, f.bin ? h("span", { class: "bin" }, f.bin)
              : h("form", { class: "bin-form", onsubmit: (e) => { e.preventDefault(); putInBin(f.id, field); } },
                h("label", { for: `bin-${f.id}`, class: "visually-hidden" }, "Bin"), field,
                h("button", { type: "submit", class: "secondary" }, "Put in bin"))),
            h("td", {}, h("div", { class: "drug" }, f.drug_description), controlledBadge(f)),
            h("td", {}, rxNumber(f), h("div", { class: "sub" }, fillNumber(f.number))),
            h("td", {}, h("span", { title: when(f.since) }, ago(f.since))),
            h("td", {}, h("a", { class: "button secondary", href: `#/will-call/${f.id}` }, "Pick-up")));
        }))), ready.paging.element];
    },
    above: labelLookup("label-scan", "ready", "#/will-call"),
  });
}

const radio = (name, value, label, checked = false) =>
  h("label", { class: "inline" }, h("input", { type: "radio", name, value, checked, required: true }), label);

async function patientConsults(rx) {
  if (!rx?.patient_id) return [];
  const lists = await Promise.all(["", "?state=ended"].map((q) => api(`/consults${q}`).then((r) => r.items).catch(() => [])));
  return lists.flat().filter((c) => c.patient_id === rx.patient_id);
}

export async function pickUpView(el, id) {
  let fill = await loadInto(el, `/fills/${id}`, "fill");
  if (!fill) return;
  const rx = await api(`/prescriptions/${fill.prescription_id}`).catch(() => null);
  const patientName = personName(rx?.patient?.name);
  // the patient's consults, open and ended (a pharmacist's own; a technician is told to ask)
  const consults = await patientConsults(rx);
  const message = h("div", { "aria-live": "assertive" });
  const flash = (text, kind) => replace(message, h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text));
  const pad = signaturePad("signature", "Collector's signature");

  function form() {
    const other = h("input", { type: "text", id: "collector-name", maxLength: 100, placeholder: "Full name of the person collecting" });
    const otherBox = h("div", { hidden: true }, h("label", { for: "collector-name" }, "Name of the person collecting"), other);
    const who = h("fieldset", { class: "plain", onchange: () => {
      const isOther = who.querySelector("input:checked")?.value === "other";
      otherBox.hidden = !isOther;
      other.required = isOther;
    } }, h("legend", {}, "Who collects it"), radio("collector", "patient", `The patient (${patientName})`, true), radio("collector", "other", "Someone else"), otherBox);
    const idChecked = h("input", { type: "checkbox", id: "id-checked", required: fill.controlled });
    // the pharmacist picks one of their consults; anyone else types the consult's ID
    const consult = consults.length
      ? h("select", { id: "consult" }, h("option", { value: "" }, "Choose the consult…"),
        consults.map((c) => h("option", { value: c.id }, `${when(c.created_at)} · ${c.state.replaceAll("_", " ")}`)))
      : h("input", { type: "text", id: "consult", maxLength: 36, autocomplete: "off", placeholder: "The consult's ID, from the pharmacist" });
    const consultBox = h("div", { hidden: true }, h("label", { for: "consult" }, "The video consult"), consult,
      h("p", { class: "hint" }, rx?.patient_id ? h("a", { href: `#/patients/${rx.patient_id}` }, "Start a consult from the patient's profile") : null));
    const counselling = h("fieldset", { class: "plain", onchange: () => {
      const video = counselling.querySelector("input:checked")?.value === "video";
      consultBox.hidden = !video;
      consult.required = video;
    } }, h("legend", {}, "Offer to counsel"),
    radio("counselling", "accepted", "Accepted: counselled at the counter"), radio("counselling", "refused", "Refused"),
    radio("counselling", "video", "Done by video"), consultBox);
    const signed = h("p", { class: "hint", id: "signature-state", role: "status" }, "Not signed yet.");
    pad.canvas.addEventListener("change", () => { signed.textContent = pad.empty ? "Not signed yet." : "Signed."; });
    const complete = h("button", { type: "submit", id: "complete-pickup" }, "Complete pick-up");
    return h("form", { class: "card", "aria-labelledby": "pickup-h", onsubmit: async (e) => {
      e.preventDefault();
      if (pad.empty) { flash("The collector must sign first.", "error"); pad.canvas.focus(); return; }
      const choice = (name) => e.target.querySelector(`input[name=${name}]:checked`)?.value;
      const body = {
        collected_by: choice("collector") === "other" ? other.value.trim() : patientName,
        id_checked: idChecked.checked,
        counselling: choice("counselling"),
        signature: true,
      };
      if (body.counselling === "video") body.consult_id = consult.value.trim();
      complete.disabled = true;
      try {
        await api(`/fills/${id}/images?kind=signature`, { method: "POST", body: await pad.blob() });
        await api(`/fills/${id}/hand-over`, { method: "POST", body });
        announce("Handed over.");
        fill = await api(`/fills/${id}`);
        render();
        flash("Handed over: the fill is complete.", "ok");
      } catch (error) {
        complete.disabled = false;
        flash(error.message, "error");
      }
    } },
    h("h2", { id: "pickup-h" }, "Pick-up"),
    who,
    h("label", { class: "inline check" }, idChecked, fill.controlled ? "Identity checked (photo ID; required for a controlled substance)" : "Identity checked"),
    counselling,
    h("label", { for: "signature" }, "Signature of the person collecting"),
    h("p", { class: "hint" }, "Sign with a finger, a pen or the mouse."),
    pad.canvas, h("div", { class: "actions" }, pad.clear, signed),
    h("div", { class: "actions" }, complete));
  }

  function summary() {
    const handed = fill.hand_over;
    return h("section", { class: "card", "aria-labelledby": "handed-h" }, h("h2", { id: "handed-h" }, "Handed over"),
      handed ? h("dl", { class: "facts" },
        fact("Collected by", handed.collected_by),
        fact("Identity checked", handed.id_checked ? "Yes" : "No"),
        fact("Counselling", { accepted: "Accepted", refused: "Refused", video: "By video" }[handed.counselling] || handed.counselling),
        fact("Signed", handed.signature ? "Yes" : "No"),
        fact("Handed over by", staffText(fill.handed_over_by))) : h("p", {}, fillBadge(fill.state)));
  }

  function render() {
    const schedule = rx?.medication?.dea_schedule?.code ?? rx?.medication?.dea_schedule ?? null;
    replace(el,
      h("p", {}, h("a", { href: "#/will-call" }, "← Back to will-call")),
      h("div", { class: "page-head" },
        h("h1", {}, rx?.medication?.drug_description || "Pick-up"),
        rx ? markers({ dea_schedule: schedule, do_not_fill: rx.medication?.do_not_fill }) : controlledBadge(fill),
        fillBadge(fill.state), fill.bin ? h("span", { class: "bin" }, `Bin ${fill.bin}`) : null,
        h("span", { class: "spacer" }), h("span", { class: "hint" }, `${rxNumber(fill)} · ${fillNumber(fill.number)}`)),
      rx ? banners(rx) : null,
      message,
      h("div", { class: "split" },
        h("div", {}, fill.state === "ready" ? form() : summary()),
        h("div", {},
          rx ? h("section", { class: "card", "aria-labelledby": "rx-h" }, h("h2", { id: "rx-h" }, "Prescription"), rxSummary(rx)) : null,
          shippingCard(fill),
          h("section", { class: "card", "aria-labelledby": "fill-history-h" }, h("h2", { id: "fill-history-h" }, "History"), historyList(fill)))));
  }

  render();
}
