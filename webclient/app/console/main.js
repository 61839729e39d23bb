// The pharmacist console: sign-in, the chrome, and a hash router over the views
// (#/queue, #/rx/<id>, #/patients (search), #/patients/<id>, #/consults, #/consults/<id>; dispensing: #/fills,
// #/fills/<id>, #/check, #/check/<id>, #/will-call, #/will-call/<id>, #/inventory,
// #/inventory/<ndc11>; the patient's side: #/adherence, #/match-review, #/patients/<id>/merge,
// #/merges/<id>, #/payments; admins: #/templates, #/templates/<kind>/<lang>).

import * as auth from "../lib/auth.js";
import { h, replace, problemBox } from "../lib/dom.js";
import { queueView } from "./queue.js";
import { prescriptionView } from "./prescription.js";
import { patientView, patientSearchView } from "./patient.js";
import { consultsView, consultRoom } from "./consults.js";
import { fillQueueView, fillView } from "./fills.js";
import { checkQueueView, checkView } from "./productcheck.js";
import { willCallView, pickUpView } from "./willcall.js";
import { inventoryView, productView } from "./inventory.js";
import { adherenceView } from "./adherence.js";
import { templatesView, templateView } from "./templates.js";
import { matchReviewView, mergeView, mergeRecordView } from "./review.js";
import { paymentsView } from "./payments.js";

const view = document.getElementById("view");
const ROUTES = [
  [/^#\/queue$/, "queue", () => queueView],
  [/^#\/rx\/([\w-]+)$/, "queue", (id) => (el) => prescriptionView(el, id)],
  [/^#\/patients$/, "patients", () => patientSearchView],
  [/^#\/patients\/([\w-]+)$/, "patients", (id) => (el) => patientView(el, id)],
  [/^#\/consults$/, "consults", () => consultsView],
  [/^#\/consults\/([\w-]+)$/, "consults", (id) => (el) => consultRoom(el, id)],
  [/^#\/fills$/, "fills", () => fillQueueView],
  [/^#\/fills\/([\w-]+)$/, "fills", (id) => (el) => fillView(el, id)],
  [/^#\/check$/, "check", () => checkQueueView],
  [/^#\/check\/([\w-]+)$/, "check", (id) => (el) => checkView(el, id)],
  [/^#\/will-call$/, "will-call", () => willCallView],
  [/^#\/will-call\/([\w-]+)$/, "will-call", (id) => (el) => pickUpView(el, id)],
  [/^#\/inventory$/, "inventory", () => inventoryView],
  [/^#\/inventory\/(\d{11})$/, "inventory", (ndc11) => (el) => productView(el, ndc11)],
  [/^#\/adherence$/, "adherence", () => adherenceView],
  [/^#\/templates$/, "templates", () => templatesView],
  [/^#\/templates\/([a-z_]+)\/([a-z]{2,3})$/, "templates", (kind, language) => (el) => templateView(el, kind, language)],
  [/^#\/match-review$/, "match-review", () => matchReviewView],
  [/^#\/patients\/([\w-]+)\/merge$/, "match-review", (id) => (el) => mergeView(el, id)],
  [/^#\/merges\/([\w-]+)$/, "match-review", (id) => (el) => mergeRecordView(el, id)],
  [/^#\/payments$/, "payments", () => paymentsView],
];

let leaveView = null;
let shown = 0; // counts navigations: a view that finishes loading after the next one began is dropped

async function show() {
  if (!auth.currentUser()) return;
  const hash = location.hash || "#/queue";
  const match = ROUTES.map(([re, section, make]) => [hash.match(re), section, make]).find(([m]) => m);
  if (!match) {
    location.replace("#/queue");
    return;
  }
  const [found, section, make] = match;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (leaveView) leaveView();
  leaveView = null;
  const mine = ++shown;
  const el = h("div", {}); // each view draws in its own element, so a stale one draws nowhere
  view.replaceChildren(el);
  view.focus({ preventScroll: true });
  let leave = null;
  try {
    leave = (await make(...found.slice(1))(el)) || null;
  } catch (error) {
    replace(el, problemBox(error, show));
  }
  if (mine === shown) leaveView = leave;
  else if (leave) leave();
}

function chrome(user) {
  const signedIn = Boolean(user);
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("signout").hidden = !signedIn;
  document.getElementById("who").textContent = signedIn ? `${user.preferred_username} · ${user.role}` : "";
  // consults are the pharmacists' (the hub refuses them to other roles)
  document.querySelector('#nav a[data-section="consults"]').hidden = user?.role !== "pharmacist";
  // filling and will-call are the counter's (technicians and pharmacists); the product check a pharmacist's
  const staff = ["pharmacist", "technician"].includes(user?.role);
  for (const section of ["fills", "will-call", "match-review"]) document.querySelector(`#nav a[data-section="${section}"]`).hidden = !staff;
  document.querySelector('#nav a[data-section="check"]').hidden = user?.role !== "pharmacist";
  // adherence is a pharmacist's (the hub refuses it to anyone else)
  document.querySelector('#nav a[data-section="adherence"]').hidden = user?.role !== "pharmacist";
  // the stock: read by the pharmacy's staff and admins (receiving and counts: the counter's;
  // reorder points: pharmacists' and admins'; the screen offers each to whom the hub allows it)
  const stock = ["pharmacist", "technician", "pharmacy_admin"].includes(user?.role);
  document.querySelector('#nav a[data-section="inventory"]').hidden = !stock;
  // the notification templates and their drug-name setting: the pharmacy admin's
  document.querySelector('#nav a[data-section="templates"]').hidden = user?.role !== "pharmacy_admin";
  // payments' books (reconciliation, receivables, prices): pharmacists' and admins'
  document.querySelector('#nav a[data-section="payments"]').hidden = !["pharmacist", "pharmacy_admin"].includes(user?.role);
  if (!signedIn) signedOut();
}

function signedOut(message) {
  if (leaveView) leaveView();
  leaveView = null;
  replace(
    view,
    h(
      "section",
      { class: "card narrow" },
      h("h1", {}, "Pharmacist console"),
      h("p", {}, "Sign in with your pharmacy account to work the verification queue and hold video consults."),
      message ? h("div", { class: "notice error", role: "alert" }, message) : null,
      h("div", { class: "actions" }, h("button", { type: "button", onclick: () => auth.signIn(), id: "signin" }, "Sign in")),
      h("p", { class: "hint" }, "You will be asked for your password and the code from your authenticator app."),
    ),
  );
}

async function boot() {
  auth.onSessionChange(chrome);
  document.getElementById("signout").addEventListener("click", async () => {
    await auth.signOut();
    history.replaceState(null, "", "/");
  });
  window.addEventListener("hashchange", show);
  try {
    const landing = await auth.start();
    if (landing === null) {
      signedOut();
      return;
    }
    if (landing && landing !== location.hash) location.hash = landing;
    else show();
  } catch (error) {
    signedOut(error.message);
  }
}

boot();
