// Video consults: the pharmacist's open consults (live), a new invite for a patient, and the
// consult room (waiting room, admit, video with mute/camera, quality, recording, end).

import { api, loadInto } from "../lib/api.js";
import { accessToken } from "../lib/auth.js";
import { ConsultCall, rating } from "../lib/call.js";
import { videoStage, muteButtons } from "../lib/stage.js";
import { h, replace, when, personName, announce, spinner, problemBox, emptyBox } from "../lib/dom.js";
import { pager, readPages, serial } from "../lib/pager.js";
import { stateBadge } from "./queue.js";
import { money } from "./payments.js";

const POLL_MS = 5000;
const PAGE = 25; // a page of the consult list (the hub's most is 100)
const INVITES = "telepharm.console.invites"; // links shown once by the hub, kept for this tab
const STATE_WORDS = {
  scheduled: "Invite sent", waiting: "Patient waiting", admitted: "Admitted", in_call: "In call",
  ended: "Ended", cancelled: "Cancelled", expired: "Expired",
};

const invites = () => JSON.parse(sessionStorage.getItem(INVITES) || "{}");
const consultBadge = (state) => {
  const badge = stateBadge(state);
  badge.textContent = STATE_WORDS[state] || state;
  return badge;
};

export async function startConsult(patientId, prescriptionId) {
  const body = { patient_id: patientId };
  if (prescriptionId) body.prescription_id = prescriptionId;
  const consult = await api("/consults", { method: "POST", body });
  sessionStorage.setItem(INVITES, JSON.stringify({ ...invites(), [consult.id]: consult.invite_url }));
  location.hash = `#/consults/${consult.id}`;
}

function inviteBox(url, expires) {
  const field = h("input", { type: "text", readOnly: true, value: url, id: "invite-link", "aria-label": "Invite link" });
  const copied = h("span", { class: "hint", role: "status" });
  return h("div", {},
    h("label", { for: "invite-link" }, `Invite link for the patient (works once, until ${when(expires)})`),
    h("div", { class: "invite" }, field,
      h("button", { type: "button", class: "secondary", onclick: async () => {
        try { await navigator.clipboard.writeText(url); } catch { field.select(); document.execCommand("copy"); }
        copied.textContent = "Copied.";
      } }, "Copy")),
    copied);
}

// newest first, a page at a time; every poll reads the list again from its first page (as many
// rows as are shown), so a consult made meanwhile comes in at the top and none is listed twice
export function consultsView(el) {
  let stopped = false;
  let timer = 0;
  let items = [];
  let next = null; // the hub's cursor after the last consult shown (null: nothing more)
  let pages = 1; // how many pages the pharmacist asked to see: kept when the list is read again
  const body = h("div", {}, spinner("Loading consults…"));
  const one = serial(); // a poll and a "Load more" never interleave
  const paging = pager("consults-more", ["consult", "consults"], () => one(loadMore));
  replace(el,
    h("div", { class: "page-head" }, h("h1", {}, "Video consults")),
    h("p", { class: "hint" }, "Start a consult from a prescription or a patient profile. Patients wait here until you admit them."),
    body, paging.element);

  let last = null;

  async function page(cursor) {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (cursor) q.set("cursor", cursor);
    return api(`/consults?${q}`);
  }

  function readFromStart() {
    return readPages(async (cursor) => {
      const got = await page(cursor);
      return { items: got.items, next: got.next_cursor };
    }, pages);
  }

  function row(c) {
    return h("tr", { dataset: { id: c.id }, onclick: () => { location.hash = `#/consults/${c.id}`; } },
      h("td", {}, personName(c.patient)),
      h("td", {}, consultBadge(c.state)),
      h("td", {}, when(c.created_at)),
      h("td", {}, h("a", { class: "button secondary", href: `#/consults/${c.id}` }, c.state === "waiting" ? "Open and admit" : "Open")));
  }

  function render() {
    paging.show(items.length, Boolean(next));
    if (!items.length) {
      replace(body, emptyBox("No open consults.", h("p", {}, h("a", { href: "#/queue" }, "Go to the queue"))));
      return;
    }
    replace(body, h("table", { class: "queue", "aria-label": "Consults" },
      h("thead", {}, h("tr", {}, ["Patient", "State", "Created", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, items.map(row))));
  }

  async function pollOnce() {
    clearTimeout(timer);
    if (stopped) return;
    try {
      const { rows, cursor } = await readFromStart();
      if (stopped) return;
      const now = JSON.stringify([rows, Boolean(cursor)]);
      if (now !== last) { // unchanged: the table (and the focus in it) stays
        last = now;
        items = rows;
        next = cursor;
        render();
      } else {
        next = cursor;
      }
    } catch (error) {
      last = null;
      paging.hide();
      replace(body, problemBox(error, poll));
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }
  const poll = () => one(pollOnce);

  async function loadMore() {
    if (stopped || !next) return;
    const had = items.length;
    const read = await page(next);
    if (stopped) return;
    const seen = new Set(items.map((c) => c.id));
    items = [...items, ...read.items.filter((c) => !seen.has(c.id))];
    next = read.next_cursor;
    pages += 1;
    last = JSON.stringify([items, Boolean(next)]);
    render();
    body.querySelectorAll("tbody tr")[had]?.querySelector("a")?.focus(); // the first consult it brought
  }

  poll();
  return () => { stopped = true; clearTimeout(timer); };
}

export async function consultRoom(el, id) {
  let consult = await loadInto(el, `/consults/${id}`, "consult");
  if (!consult) return null;
  let call = null;
  let stream = null;
  let recordingConsent = false;
  let fee = null; // the consult's fee: paid or not (GET /consults/{id}/fee)
  let feeTimer = 0;

  const qualityPill = h("span", { class: "pill", id: "quality" }, "Quality: —");
  const peerPill = h("span", { class: "pill", id: "peer-state" }, "Patient: not here");
  const { element: stage, remote, local, placeholder, recording: recPill } = videoStage({
    waiting: "Join the room to see the waiting room and the patient.",
    peer: "The patient",
    pills: [peerPill, qualityPill],
  });
  const status = h("div", { "aria-live": "polite" });
  const controls = h("div", { class: "controls" });
  // the end form sits between two parts that re-render; it is never moved, so the notes being
  // typed keep their value and their focus while the consult changes
  const about = h("div", {});
  const history = h("div", {});

  const say = (text, kind = "ok") => replace(status, h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text));

  function render() {
    const state = consult.state;
    const over = ["ended", "cancelled", "expired"].includes(state);
    // once the patient has come, the link is used: no invite to show, nothing to cancel
    const came = consult.history.some((step) => step.to === "waiting");
    const link = came ? null : invites()[id];
    replace(about,
      h("section", { class: "card" }, h("h2", {}, "Consult"),
        h("p", {}, consultBadge(state)),
        state === "scheduled" && link ? inviteBox(link, consult.invite_expires_at) : null,
        state === "scheduled" && !link && !came ? h("p", { class: "hint" }, "The invite link was shown when the consult was created.") : null,
        state === "scheduled" && came ? h("p", { class: "hint" }, "The patient left. They can come back with the same page, or you can end the consult with your notes.") : null,
        consult.notes ? h("div", { class: "notice ok", id: "counselling-summary" },
          h("p", {}, h("strong", {}, `Counselling ${consult.counselling}`)), h("p", {}, consult.notes)) : null,
        feeLine(),
        consult.prescription_id ? h("p", {}, h("a", { href: `#/rx/${consult.prescription_id}` }, "The prescription")) : null,
        h("p", {}, h("a", { href: `#/patients/${consult.patient_id}` }, "Patient profile")),
        state === "scheduled" && !call && !came ? h("div", { class: "actions" },
          h("button", { type: "button", class: "quiet", onclick: cancel }, "Cancel consult")) : null));
    endForm.hidden = over || !call;
    replace(history,
      h("section", { class: "card" }, h("h2", {}, "History"),
        h("ol", { class: "history" }, consult.history.map((s) => h("li", {}, h("strong", {}, s.to), " ", s.reason,
          h("div", { class: "sub" }, when(s.at)))))));
    renderControls(over);
  }

  function feeLine() {
    if (!fee || fee.status === "none") return null;
    const amount = money(fee.amount, fee.currency);
    const words = {
      paid: `Fee paid (${amount})`,
      processing: `Fee payment processing (${amount})`,
      covered: `Fee ${amount}, covered by the patient's credit`,
      failed: `Fee not paid (${amount}): the card was declined${fee.reason ? `: ${fee.reason}` : ""}`,
      unpaid: fee.policy === "after" ? `Fee ${amount}, billed after the consult` : `Fee not paid (${amount})`,
    }[fee.status] || fee.status;
    return h("div", { id: "consult-fee" },
      h("p", {}, h("span", { class: `badge ${fee.status === "paid" ? "ready" : ""}` }, words)),
      fee.policy === "before_admission" && !["paid", "covered"].includes(fee.status) && !["ended", "cancelled", "expired"].includes(consult.state)
        ? h("p", { class: "hint" }, "The patient pays in the waiting room; you can admit them once it is paid.") : null,
      fee.refund_due ? h("p", { class: "notice info" }, "The consult was called off after the fee was paid: refund it from the patient's payments.") : null);
  }

  // the fee changes without the consult changing (the provider's webhook): asked again while
  // it is not settled and the consult is open
  async function watchFee() {
    clearTimeout(feeTimer);
    const was = JSON.stringify(fee);
    fee = await api(`/consults/${id}/fee`).catch(() => fee);
    if (JSON.stringify(fee) !== was) render();
    const open = !["ended", "cancelled", "expired"].includes(consult.state);
    if (open && fee && !["paid", "none", "covered"].includes(fee.status) && el.isConnected) feeTimer = setTimeout(watchFee, POLL_MS);
  }

  function renderControls(over) {
    if (over) {
      replace(controls, h("a", { class: "button secondary", href: "#/consults" }, "Back to consults"));
      return;
    }
    if (!call) {
      replace(controls, h("button", { type: "button", id: "join-room", onclick: join }, "Join the room"));
      return;
    }
    const state = consult.state;
    replace(controls,
      state === "waiting" ? h("button", { type: "button", id: "admit", onclick: () => call.admit() }, "Admit the patient") : null,
      muteButtons(call, () => renderControls(false)),
      state === "in_call" ? h("button", { type: "button", class: "secondary", id: "record-consent", "aria-pressed": String(recordingConsent),
        onclick: () => { recordingConsent = !recordingConsent; call.consentToRecording(recordingConsent); renderControls(false); } },
      recordingConsent ? "Withdraw recording consent" : "Ask to record") : null);
  }

  // made once: the room re-renders as the consult changes, and notes being typed must stay
  const endForm = h("form", { class: "card", id: "end-form", hidden: true, onsubmit: (e) => {
      e.preventDefault();
      const form = e.target.elements;
      call.end(form.notes.value.trim(), form.counselling.value);
    } },
    h("h2", {}, "End with counselling notes"),
    h("fieldset", { class: "plain" }, h("legend", {}, "Offer to counsel"),
      h("label", { class: "inline" }, h("input", { type: "radio", name: "counselling", value: "accepted", checked: true }), "Accepted"),
      h("label", { class: "inline" }, h("input", { type: "radio", name: "counselling", value: "refused" }), "Refused")),
    h("label", { for: "notes" }, "Counselling notes"),
    h("textarea", { id: "notes", name: "notes", required: true, maxLength: 4000 }),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "danger" }, "End consult")));

  async function cancel() {
    try {
      consult = await api(`/consults/${id}/cancel`, { method: "POST" });
      render();
    } catch (error) {
      say(error.message, "error");
    }
  }

  async function refresh() {
    consult = await api(`/consults/${id}`).catch(() => consult);
    render();
    watchFee();
  }

  async function join() {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    } catch (error) {
      // still in the room (to admit, to end with notes), but unseen and unheard
      stream = new MediaStream();
      say(error.name === "NotAllowedError"
        ? "The browser blocks the camera and microphone, so the patient will neither see nor hear you. Allow them for this site and join again to fix it."
        : "No camera or microphone could be opened, so the patient will neither see nor hear you.", "error");
    }
    local.srcObject = stream;
    local.hidden = false;
    call = new ConsultCall({ role: "pharmacist", stream, join: async () => ({ access_token: await accessToken(), consult_id: id }) });
    call.addEventListener("joined", (e) => { consult.state = e.detail.state; placeholder.textContent = "Waiting for the patient…"; refresh(); });
    call.addEventListener("peer", (e) => {
      peerPill.textContent = e.detail.present ? "Patient: here" : "Patient: left";
      announce(e.detail.present ? "The patient joined." : "The patient left.");
      if (!e.detail.present) {
        remote.srcObject = null;
        recordingConsent = false; // the patient's drop cleared both consents
      }
      if (!remote.srcObject) {
        placeholder.hidden = false;
        placeholder.textContent = e.detail.present
          ? "The patient is in the waiting room. Admit them when you are ready."
          : "The patient left. End the consult with your notes, or wait for them to come back.";
      }
      refresh();
    });
    call.addEventListener("admitted", () => { placeholder.textContent = "Connecting…"; refresh(); });
    call.addEventListener("remote", (e) => { remote.srcObject = e.detail; placeholder.hidden = true; });
    call.addEventListener("connection", (e) => {
      if (e.detail.state === "connected") { say("Connected to the patient."); setTimeout(refresh, 300); }
      if (e.detail.state === "failed") say("The connection to the patient was lost; reconnecting…", "error");
    });
    call.addEventListener("mute", (e) => {
      peerPill.textContent = `Patient: ${e.detail.audio ? "microphone off" : "microphone on"}, ${e.detail.video ? "camera off" : "camera on"}`;
    });
    call.addEventListener("quality", (e) => {
      const shown = e.detail.peer || e.detail.own;
      const level = rating(shown);
      qualityPill.className = `pill quality-${level}`;
      qualityPill.textContent = `Quality: ${level}${shown ? ` · ${Math.round(shown.bitrate_kbps)} kbps · ${Math.round(shown.rtt_ms)} ms` : ""}`;
    });
    call.addEventListener("recording", (e) => {
      recPill.hidden = !e.detail.active;
      announce(e.detail.active ? "Recording started." : "Recording stopped.");
    });
    call.addEventListener("recordingasked", (e) => say(e.detail.consent ? "The patient agreed to recording." : "The patient declined recording."));
    call.addEventListener("reconnecting", () => {
      recordingConsent = false; // a dropped connection clears both consents at the hub
      say("Reconnecting to the hub…", "error");
    });
    call.addEventListener("refused", (e) => say(e.detail.message, "error"));
    call.addEventListener("error", (e) => say(e.detail.message, "error"));
    call.addEventListener("ended", (e) => {
      stream?.getTracks().forEach((t) => t.stop());
      local.hidden = true;
      qualityPill.hidden = true;
      peerPill.hidden = true;
      if (e.detail.reason === "ended") say("The consult has ended; your notes are saved.");
      remote.srcObject = null;
      placeholder.hidden = false;
      placeholder.textContent = e.detail.reason === "unauthorized"
        ? "Your sign-in has ended. Sign in again to return to the consult."
        : "The consult is over.";
      recPill.hidden = true;
      refresh().then(() => { call = null; render(); });
    });
    call.connect();
    render();
  }

  replace(el,
    h("p", {}, h("a", { href: "#/consults" }, "← All consults")),
    h("div", { class: "page-head" }, h("h1", {}, "Consult room")),
    status,
    h("div", { class: "split" }, h("div", {}, stage, controls), h("div", {}, about, endForm, history)));
  render();
  watchFee();
  return () => {
    clearTimeout(feeTimer);
    if (call && !call.over) call.leave();
    stream?.getTracks().forEach((t) => t.stop());
  };
}
