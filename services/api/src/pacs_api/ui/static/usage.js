// Storage and index usage: GET /usage (counts and bytes from the index) and /readyz.
import { h, mount, errorBox, formatBytes, formatNumber } from "./dom.js";
import { fetchJson } from "./api.js";

export async function usagePage(main) {
  const body = h("div");
  mount(main, h("h1", {}, "Storage and index"), body);
  let usage;
  try {
    usage = await fetchJson("the API", "/usage");
  } catch (error) {
    mount(body, errorBox(error.message));
    return null;
  }
  let ready;
  try {
    ready = await fetchJson("the API", "/readyz");
  } catch (error) {
    ready = { status: "unavailable", checks: {}, error: error.message };
  }
  const stat = (label, v) => h("div", { className: "card stat" }, h("div", { className: "value" }, v), h("div", { className: "label" }, label));
  mount(body,
    h("div", { className: "stats", role: "list" },
      [["Patients", formatNumber(usage.patients)], ["Studies", formatNumber(usage.studies)],
        ["Series", formatNumber(usage.series)], ["Instances", formatNumber(usage.instances)],
        ["Stored", formatBytes(usage.bytes)]].map(([l, v]) => {
        const card = stat(l, v);
        card.setAttribute("role", "listitem");
        card.dataset.stat = l.toLowerCase();
        return card;
      })),
    h("h2", {}, "By modality"),
    usage.modalities.length
      ? h("div", { className: "table-wrap" }, h("table", { "aria-label": "By modality" },
        h("thead", {}, h("tr", {}, ["Modality", "Series", "Instances", "Stored"].map((t, i) => h("th", { scope: "col", className: i ? "num" : "" }, t)))),
        h("tbody", {}, usage.modalities.map((m) => h("tr", {},
          h("td", {}, m.modality || "(none)"), h("td", { className: "num" }, formatNumber(m.series)),
          h("td", { className: "num" }, formatNumber(m.instances)), h("td", { className: "num" }, formatBytes(m.bytes)))))))
      : h("p", { className: "notice" }, "The archive is empty."),
    h("h2", {}, "Health"),
    h("p", {}, "Index: ", health(ready.checks?.index), " · Object store: ", health(ready.checks?.store)),
    ready.error ? errorBox(ready.error) : null);
  return null;
}

function health(check) {
  return h("strong", { className: check === "ok" ? "ok" : "bad" }, check ?? "unknown");
}
