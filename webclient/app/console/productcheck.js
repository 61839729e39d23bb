// The product check (the pharmacist's, possibly from another site): the fills awaiting it,
// and one fill with everything side by side: the prescription, what was scanned (NDC, lot,
// expiry), the count, the three photos at full size (click to enlarge), the label's text;
// approve, or send back to the technician with a reason. Controlled substances are marked.

import { api, loadInto } from "../lib/api.js";
import { currentUser } from "../lib/auth.js";
import { h, replace, when, ago, day, fact, announce, emptyBox } from "../lib/dom.js";
import { markers, scheduleLabel } from "./queue.js";
import { banners } from "./prescription.js";
import {
  PHOTO_KINDS, polled, fillBadge, fillNumber, rxNumber, controlledBadge, imagesOf, imageUrl, latestOfKind,
  labelTextOf, historyList, rxSummary, ndcText, unitText, labelLookup, watchFill, rowKey,
} from "./fills.js";

export function checkQueueView(el) {
  return polled(el, {
    title: "Product check",
    hint: "Fills a technician submitted, oldest first. You cannot check a fill of your own.",
    queues: { check: ["product_check", "check-more", ["fill", "fills"]] },
    draw: async ({ check }) => [
      check.rows.length ? h("table", { class: "queue", "aria-label": "Fills awaiting the product check" },
        h("thead", {}, h("tr", {}, ["Medication", "Rx", "Quantity", "Waiting", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, check.rows.map((f) => h("tr", { class: f.controlled ? "controlled" : "", dataset: { id: rowKey(f) }, onclick: () => { location.hash = `#/check/${f.id}`; } },
          h("td", {}, h("div", { class: "drug" }, f.drug_description), controlledBadge(f)),
          h("td", {}, rxNumber(f), h("div", { class: "sub" }, fillNumber(f.number))),
          h("td", {}, f.quantity_owed ?? "—"),
          h("td", {}, h("span", { title: when(f.since) }, ago(f.since))),
          h("td", {}, h("a", { class: "button secondary", href: `#/check/${f.id}` }, "Check"))))))
        : emptyBox("No fill waits for a product check."),
      check.paging.element,
    ],
    above: labelLookup("label-scan", "product_check", "#/check"),
  });
}

// a photo at its own size in the layout, opened full screen by a click (or Enter)
function zoomable(fillId, image, title) {
  const img = h("img", { alt: `${title}: photo taken by the technician`, class: "evidence" });
  const dialog = h("dialog", { class: "zoom", "aria-label": title },
    h("form", { method: "dialog" }, h("button", { type: "submit", class: "secondary" }, "Close")),
    h("img", { alt: `${title}, enlarged`, class: "zoomed" }));
  imageUrl(fillId, image.id).then((url) => {
    img.src = url;
    dialog.querySelector("img").src = url;
  }).catch(() => { img.alt = `${title}: the photo could not be loaded`; });
  const open = h("button", { type: "button", class: "zoom-open", "aria-label": `Enlarge: ${title}`, onclick: () => dialog.showModal() }, img);
  return [open, dialog];
}

function photosCard(fill, images) {
  return h("section", { class: "card", "aria-labelledby": "photos-h" },
    h("h2", { id: "photos-h" }, "Photos"),
    h("div", { class: "evidence-grid" }, PHOTO_KINDS.map(([kind, title]) => {
      const image = latestOfKind(images, kind);
      return h("figure", { class: "evidence", dataset: { kind } },
        h("figcaption", {}, h("strong", {}, title)),
        image ? zoomable(fill.id, image, title) : h("div", { class: "notice error" }, "No photo."));
    })));
}

function scanCard(fill, rx) {
  const p = fill.product;
  const written = rx?.medication?.product_code?.qualifier === "ND" ? rx.medication.product_code.code.replaceAll("-", "") : null;
  const same = written && p ? written === p.ndc11 : null;
  return h("section", { class: "card", "aria-labelledby": "scanned-h" },
    h("h2", { id: "scanned-h" }, "Scanned and counted"),
    p ? h("dl", { class: "facts", "aria-label": "Scan result" },
      fact("Product", p.drug || "Not in the drug reference"),
      fact("NDC", ndcText(p.ndc11), same === null ? null : " ", same === null ? null : same ? h("span", { class: "badge verified" }, "as written") : h("span", { class: "badge warning" }, "equivalent")),
      fact("Lot", p.lot),
      fact("Expiry", p.expiry ? day(p.expiry) : null),
      p.serial ? fact("Serial", p.serial) : null,
      fact("Counted", `${fill.quantity ?? "—"} ${unitText(fill.unit)}`, fill.partial ? h("span", { class: "badge warning" }, "partial") : null),
      fact("Owed", `${fill.quantity_owed} ${unitText(fill.unit)}`),
      fill.partial ? fact("Why partial", fill.partial_reason) : null)
      : h("p", {}, "Nothing was scanned."));
}

export async function checkView(el, id) {
  let fill = await loadInto(el, `/fills/${id}`, "fill");
  if (!fill) return;
  const rx = await api(`/prescriptions/${fill.prescription_id}`).catch(() => null);
  let images = await imagesOf(fill);
  let labelText = labelTextOf(fill);
  if (labelText === null) labelText = (await api(`/fills/${id}/label`).catch(() => null))?.text ?? null;
  let sending = false;
  const message = h("div", { "aria-live": "assertive" });
  const flash = (text, kind) => replace(message, h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text));

  async function act(name, body, done) {
    try {
      await api(`/fills/${id}/${name}`, { method: "POST", body });
      announce(done);
      fill = await api(`/fills/${id}`);
      images = await imagesOf(fill);
      sending = false;
      render();
      flash(done, "ok");
    } catch (error) {
      flash(error.message, "error");
    }
  }

  function actions() {
    const pharmacist = currentUser()?.role === "pharmacist";
    if (fill.state !== "product_check") {
      return h("section", { class: "card", "aria-labelledby": "decide-h" }, h("h2", { id: "decide-h" }, "Product check"),
        h("p", {}, fillBadge(fill.state), fill.checked_by ? ` Checked by ${fill.checked_by}.` : ""),
        fill.state === "ready" ? h("a", { class: "button secondary", href: `#/will-call/${fill.id}` }, "Open in will-call") : null);
    }
    const reason = h("textarea", { id: "send-back-reason", required: true, maxLength: 1000, placeholder: "What the technician must fix" });
    return h("section", { class: "card", "aria-labelledby": "decide-h" },
      h("h2", { id: "decide-h" }, "Product check"),
      pharmacist ? null : h("p", { class: "hint" }, "Only a pharmacist checks the product."),
      fill.controlled ? h("p", { class: "hint" }, "A controlled substance: your account needs the controlled-substance permission.") : null,
      h("div", { class: "actions" },
        h("button", { type: "button", id: "approve-product", disabled: !pharmacist, onclick: () => act("approve", {}, "Product check passed: the fill is ready.") }, "Approve product"),
        h("button", { type: "button", class: "secondary", disabled: !pharmacist, "aria-expanded": sending ? "true" : "false",
          onclick: () => { sending = !sending; render(); if (sending) el.querySelector("#send-back-reason")?.focus(); } }, "Send back…")),
      sending ? h("form", { class: "card", onsubmit: (e) => { e.preventDefault(); act("send-back", { reason: reason.value.trim() }, "Sent back to the technician."); } },
        h("label", { for: "send-back-reason" }, "Reason"), reason,
        h("div", { class: "actions" }, h("button", { type: "submit", class: "danger" }, "Send back to the technician"))) : null);
  }

  function render() {
    const schedule = rx?.medication?.dea_schedule?.code ?? rx?.medication?.dea_schedule ?? null;
    replace(el,
      h("p", {}, h("a", { href: "#/check" }, "← Back to the product check")),
      h("div", { class: "page-head" },
        h("h1", {}, rx?.medication?.drug_description || fill.product?.drug || "Fill"),
        rx ? markers({ dea_schedule: schedule, do_not_fill: rx.medication?.do_not_fill, urgent: rx.urgent }) : controlledBadge(fill),
        fillBadge(fill.state),
        h("span", { class: "spacer" }), h("span", { class: "hint" }, `${rxNumber(fill)} · ${fillNumber(fill.number)}`)),
      fill.controlled ? h("div", { class: "banner controlled", role: "note" }, h("strong", {}, schedule ? scheduleLabel(schedule) : "CONTROLLED"),
        " A controlled substance: check the count and the lot with particular care.") : null,
      rx ? banners(rx) : null,
      message,
      h("div", { class: "check-grid" },
        h("section", { class: "card", "aria-labelledby": "rx-h" }, h("h2", { id: "rx-h" }, "Prescription"), rx ? rxSummary(rx) : h("p", {}, "—")),
        scanCard(fill, rx),
        h("section", { class: "card", "aria-labelledby": "label-h" }, h("h2", { id: "label-h" }, "Label"),
          labelText ? h("pre", { class: "label-text", "aria-label": "Label text" }, labelText) : h("p", { class: "notice error" }, "No label text."))),
      photosCard(fill, images),
      h("div", { class: "split" }, actions(),
        h("section", { class: "card", "aria-labelledby": "fill-history-h" }, h("h2", { id: "fill-history-h" }, "History"), historyList(fill))));
  }

  render();
  watchFill(el, () => fill, async () => {
    fill = await api(`/fills/${id}`);
    images = await imagesOf(fill);
    labelText = labelTextOf(fill) ?? labelText;
    render();
  });
}
