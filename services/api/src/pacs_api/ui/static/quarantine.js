// The quarantine (admin): images whose Pixel Data is missing or incomplete, kept exactly as
// received instead of the archive (GET /quarantine), with Release (store it in the archive
// anyway) and Delete; and the bridge's deliveries held back for the same reason
// (GET {bridge}/routing/quarantine), with Send anyway and Drop.
import { h, mount, errorBox, formatBytes, formatDateTime, formatNumber } from "./dom.js";
import { fetchJson } from "./api.js";

const API = "the API";
const BRIDGE = "The DIMSE bridge status API";
const LIMIT = 100;

const KINDS = {
  missing: "Pixel Data missing",
  truncated: "File truncated",
  short: "Pixel Data shorter than the header says",
  undelimited: "Encapsulated Pixel Data not terminated",
};

export async function quarantinePage(main, { config }) {
  const status = h("p", { role: "status", className: "muted" });
  const entries = h("div", { "aria-live": "polite" });
  const deliveries = h("div");
  mount(main,
    h("h1", {}, "Quarantine"),
    h("p", { className: "muted" }, "Images whose Pixel Data is missing or incomplete are kept here, byte for byte as " +
      "received, instead of the archive; the sender was told they failed. Release stores one in the archive anyway " +
      "(when its header is right and the pixels were meant to be absent); Delete removes it for good."),
    h("p", { className: "actions" }, h("button", { type: "button", onclick: () => refresh() }, "Refresh")),
    status,
    entries,
    config.bridge_status_url ? [h("h2", {}, "Held back by the DIMSE bridge"), deliveries] : null);

  async function act(button, work) {
    button.disabled = true;
    try {
      await work();
    } catch (error) {
      status.replaceChildren(errorBox(error.message));
      button.disabled = false;
      return;
    }
    await refresh();
  }

  function release(entry, button) {
    return act(button, async () => {
      const done = await fetchJson(API, `/quarantine/${entry.id}/release`, { method: "POST" });
      status.replaceChildren(`Released ${entry.id} into the archive: `,
        h("a", { href: `#/study/${encodeURIComponent(done.study_uid)}` }, "open the study"), ".");
    });
  }

  function remove(entry, button) {
    if (!window.confirm(`Delete quarantined image ${entry.id} for good?`)) return Promise.resolve();
    return act(button, async () => {
      await fetchJson(API, `/quarantine/${entry.id}`, { method: "DELETE" });
      status.replaceChildren(`Deleted ${entry.id}.`);
    });
  }

  function renderEntries(page) {
    if (!page.entries.length) {
      mount(entries, h("p", { className: "notice" }, "Nothing is in the quarantine."));
      return;
    }
    const head = ["Last received", "Patient", "Problem", "Source", "Size", "Copies", ""];
    mount(entries,
      h("div", { className: "table-wrap" }, h("table", { "aria-label": "Quarantined images" },
        h("thead", {}, h("tr", {}, head.map((t, i) => h("th", { scope: "col", className: i === 4 || i === 5 ? "num" : "" }, t)))),
        h("tbody", {}, page.entries.map((e) => {
          const who = [e.source_ae && `AE ${e.source_ae}`, e.source_subject, e.source_address].filter(Boolean).join(" · ");
          const releaseButton = h("button", { type: "button", "aria-label": `Release ${e.id}` }, "Release");
          const deleteButton = h("button", { type: "button", "aria-label": `Delete ${e.id}` }, "Delete");
          releaseButton.addEventListener("click", () => release(e, releaseButton));
          deleteButton.addEventListener("click", () => remove(e, deleteButton));
          return h("tr", { "data-entry": e.id },
            h("td", {}, formatDateTime(e.last_received_at)),
            h("td", {}, (e.patient_name || "(no name)").replaceAll("^", " "), h("br"), h("span", { className: "muted" }, e.patient_id || "(no ID)")),
            h("td", {}, h("strong", { className: "bad" }, KINDS[e.kind] ?? e.kind), h("br"), h("span", { className: "muted" }, e.reason)),
            h("td", {}, who || "–"),
            h("td", { className: "num" }, formatBytes(e.size)),
            h("td", { className: "num" }, formatNumber(e.times_received)),
            h("td", {}, h("span", { className: "actions" }, releaseButton, deleteButton,
              h("a", { href: `/quarantine/${e.id}/object`, download: `${e.id}.dcm` }, "Download"))));
        })))),
      page.total > page.entries.length
        ? h("p", { className: "muted" }, `Showing the ${page.entries.length} last received of ${formatNumber(page.total)}.`)
        : null);
  }

  function renderDeliveries(rows) {
    if (!rows.length) {
      mount(deliveries, h("p", { className: "muted" }, "The bridge holds nothing back."));
      return;
    }
    const base = config.bridge_status_url;
    const head = ["Since", "Destination", "Instance", "Reason", ""];
    mount(deliveries, h("div", { className: "table-wrap" }, h("table", { "aria-label": "Held back by the bridge" },
      h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map((d) => {
        const send = h("button", { type: "button", "aria-label": `Send delivery ${d.id} anyway` }, "Send anyway");
        const drop = h("button", { type: "button", "aria-label": `Drop delivery ${d.id}` }, "Drop");
        send.addEventListener("click", () => act(send, () =>
          fetchJson(BRIDGE, `${base}/routing/deliveries/${d.id}/release`, { method: "POST" })));
        drop.addEventListener("click", () => act(drop, () =>
          fetchJson(BRIDGE, `${base}/routing/deliveries/${d.id}`, { method: "DELETE" })));
        return h("tr", { "data-delivery": String(d.id) },
          h("td", {}, formatDateTime(d.updated_at)), h("td", {}, d.destination),
          h("td", {}, d.instance), h("td", { className: "bad" }, d.last_error),
          h("td", {}, h("span", { className: "actions" }, send, drop)));
      })))));
  }

  async function refresh() {
    try {
      renderEntries(await fetchJson(API, `/quarantine?limit=${LIMIT}`));
    } catch (error) {
      mount(entries, errorBox(error.message));
    }
    if (!config.bridge_status_url) return;
    try {
      renderDeliveries(await fetchJson(BRIDGE, `${config.bridge_status_url}/routing/quarantine`));
    } catch (error) {
      mount(deliveries, errorBox(error.message));
    }
  }

  await refresh();
  return null;
}
