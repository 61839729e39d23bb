// "Load more" under a list the hub pages by cursor: the button is there only while the hub
// says a next page exists (a next cursor), and a polite status says how many rows are shown,
// so a screen reader hears the count change once, not the rows themselves.

import { h, replace } from "./dom.js";

// noun: [singular, plural] of what the list holds; load: reads the next page (the pager
// ignores clicks while it runs, so a double click asks for one page, not two)
export function pager(id, [one, many], load) {
  let running = false;
  let said = null;
  const count = h("p", { class: "hint pager-count", id: `${id}-count`, role: "status" });
  const message = h("div", {});
  const button = h("button", { type: "button", class: "secondary", id, hidden: true, onclick: more }, "Load more");

  async function more() {
    if (running) return;
    running = true;
    button.setAttribute("aria-busy", "true");
    button.textContent = "Loading…";
    replace(message);
    try {
      await load();
    } catch (error) {
      replace(message, h("div", { class: "notice error", role: "alert" }, error.message || String(error)));
    } finally {
      running = false;
      button.removeAttribute("aria-busy");
      button.textContent = "Load more";
    }
  }

  return {
    element: h("div", { class: "actions pager" }, count, button, message),
    // shown: rows on the page; next: whether the hub has more (an empty list says nothing:
    // its empty box says it)
    show(shown, next) {
      button.hidden = !next;
      const noun = shown === 1 ? one : many;
      const text = !shown ? "" : next ? `${shown} ${noun} shown; more to load.` : `All ${shown} ${noun} shown.`;
      if (text !== said) {
        said = text;
        count.textContent = text;
      }
    },
    hide() {
      button.hidden = true;
      said = "";
      count.textContent = "";
    },
  };
}

// one thing at a time: a poll and a "Load more" of one list run one after the other, so a
// page read after the list was read again is never appended to it
export function serial() {
  let last = Promise.resolve();
  return (task) => {
    const run = last.then(task);
    last = run.catch(() => {});
    return run;
  };
}

// a list from its first page, `pages` pages at most (or to its end): a list read at one
// revision, never pages of two revisions mixed. read(cursor) gives { items, next }; a row is
// listed once (by key)
export async function readPages(read, pages, key = (row) => row.id) {
  const rows = [];
  const seen = new Set();
  let cursor = null;
  let count = 0;
  do {
    const page = await read(cursor);
    for (const row of page.items) {
      const k = key(row);
      if (!seen.has(k)) { seen.add(k); rows.push(row); }
    }
    cursor = page.next;
    count += 1;
  } while (cursor && count < pages);
  return { rows, cursor };
}
