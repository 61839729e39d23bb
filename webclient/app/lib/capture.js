// What the fill screens take from the world: a camera still (getUserMedia → canvas → JPEG
// blob), a picked or phone-captured file, and a signature drawn with a mouse, a pen or a
// finger (pointer events on a canvas → PNG blob). No library: the browser does it all.

import { h, replace } from "./dom.js";

const JPEG_QUALITY = 0.9;
// the cameras open now: a view that is left releases them (stopCameras), so none stays lit
const open = new Set();

export function stopCameras() {
  for (const stop of [...open]) stop();
}

// A camera panel in `el`: a live preview, "Take photo" and "Cancel". Resolves with a JPEG
// Blob, or null when cancelled; the camera is released either way.
export function cameraShot(el, { title = "Camera", facing = "environment" } = {}) {
  stopCameras(); // one camera at a time: a panel opened again replaces the one before
  return new Promise((resolve) => {
    let stream = null;
    const video = h("video", { class: "preview", autoplay: true, muted: true, playsInline: true, "aria-label": `${title}: live preview` });
    const status = h("p", { class: "hint", role: "status" }, "Starting the camera…");
    const take = h("button", { type: "button", disabled: true, onclick: shoot }, "Take photo");
    const cancel = h("button", { type: "button", class: "secondary", onclick: () => done(null) }, "Cancel");
    replace(el, h("div", { class: "camera" }, h("h3", {}, title), video, status, h("div", { class: "actions" }, take, cancel)));

    function done(blob) {
      open.delete(cancelled);
      for (const track of stream?.getTracks() || []) track.stop();
      stream = null;
      replace(el);
      resolve(blob);
    }
    const cancelled = () => done(null);
    open.add(cancelled);

    function shoot() {
      const canvas = document.createElement("canvas");
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      canvas.getContext("2d").drawImage(video, 0, 0);
      canvas.toBlob((blob) => done(blob), "image/jpeg", JPEG_QUALITY);
    }

    navigator.mediaDevices?.getUserMedia({ video: { facingMode: facing, width: { ideal: 1920 } }, audio: false })
      .then(async (got) => {
        if (!open.has(cancelled)) {
          for (const track of got.getTracks()) track.stop(); // cancelled while the camera started
          return;
        }
        stream = got;
        video.srcObject = got;
        await video.play().catch(() => {});
        if (!video.videoWidth) await new Promise((r) => video.addEventListener("loadedmetadata", r, { once: true }));
        status.textContent = "Hold the item steady in the frame, then take the photo.";
        take.disabled = false;
        take.focus();
      })
      .catch((error) => {
        status.textContent = error?.name === "NotAllowedError"
          ? "The camera is blocked for this page: allow it in the browser, or upload a photo instead."
          : "No camera could be opened: upload a photo instead.";
      });
  });
}

// A file input that takes a photo on a phone (capture) or picks a file elsewhere.
export function photoPicker(id, label, onPick) {
  const input = h("input", { type: "file", id, accept: "image/jpeg,image/png,image/webp", capture: "environment", class: "visually-hidden",
    onchange: (e) => { const file = e.target.files[0]; e.target.value = ""; if (file) onPick(file); } });
  return [input, h("label", { for: id, class: "button secondary file" }, label)];
}

// A signature pad: pointer events (mouse, pen, touch alike), a line that follows the pointer,
// "Clear"; `blob()` gives the PNG, `empty` says whether anything was drawn.
export function signaturePad(id, label) {
  const canvas = h("canvas", { id, class: "signature", width: 600, height: 200, role: "img", "aria-label": label, tabindex: "0" });
  const ctx = canvas.getContext("2d");
  let drawing = false;
  let strokes = 0;
  const reset = () => {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.lineWidth = 3;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = "#17212b";
    strokes = 0;
    canvas.dispatchEvent(new Event("change"));
  };
  const at = (e) => {
    const box = canvas.getBoundingClientRect();
    return [(e.clientX - box.left) * (canvas.width / box.width), (e.clientY - box.top) * (canvas.height / box.height)];
  };
  canvas.addEventListener("pointerdown", (e) => {
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    drawing = true;
    ctx.beginPath();
    ctx.moveTo(...at(e));
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    ctx.lineTo(...at(e));
    ctx.stroke();
  });
  const end = () => {
    if (!drawing) return;
    drawing = false;
    strokes += 1;
    canvas.dispatchEvent(new Event("change"));
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  reset();
  const clear = h("button", { type: "button", class: "quiet", onclick: reset }, "Clear signature");
  return {
    canvas,
    clear,
    get empty() { return strokes === 0; },
    blob: () => new Promise((resolve) => canvas.toBlob(resolve, "image/png")),
  };
}
