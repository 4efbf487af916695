// The audit log (admins): GET /audit (PS3.15 A.5 records) with filters and paging, newest first.
import { h, mount, errorBox, formatDateTime, formatNumber } from "./dom.js";
import { fetchJson } from "./api.js";

const PAGE_SIZE = 50;
const FIELDS = ["from", "to", "user", "event", "outcome", "study"];
// The events the services record (PS3.16 CID 400 "Audit Event ID"); the API checks them.
const EVENTS = [
  ["", "Any"], ["110100", "Application Activity"], ["110101", "Audit Log Used"],
  ["110103", "DICOM Instances Accessed"], ["110104", "DICOM Instances Transferred"],
  ["110105", "DICOM Study Deleted"], ["110106", "Export"], ["110107", "Import"],
  ["110112", "Query"], ["110113", "Security Alert"], ["110114", "User Authentication"],
];
// EventOutcomeIndicator (RFC 3881 §5.1.4).
const OUTCOMES = { 0: ["Success", "ok"], 4: ["Minor failure", "bad"], 8: ["Serious failure", "bad"], 12: ["Major failure", "bad"] };
const ACTIONS = { C: "Create", R: "Read", U: "Update", D: "Delete", E: "Execute" };

/** A local calendar day "2025-01-31" as the UTC instant it starts at (+1 day for "to"). */
function dayStart(day, plusDays = 0) {
  const date = new Date(`${day}T00:00`);
  date.setDate(date.getDate() + plusDays);
  return date.toISOString();
}

export async function auditPage(main, { params }) {
  const criteria = Object.fromEntries(FIELDS.map((f) => [f, params.get(f) ?? ""]));
  const offset = Math.max(0, Number.parseInt(params.get("offset") ?? "0", 10) || 0);

  const input = (field, label, attrs = {}) =>
    h("label", {}, label, h("input", { name: field, value: criteria[field], ...attrs }));
  const select = (field, label, options) => h("label", {}, label, h("select", { name: field },
    options.map(([v, text]) => h("option", { value: v, selected: v === criteria[field] }, text))));
  const form = h("form", { className: "search card", role: "search", "aria-label": "Filter the audit log" },
    input("from", "From day", { type: "date" }),
    input("to", "To day", { type: "date" }),
    input("user", "User or AE title", { type: "search", autocomplete: "off" }),
    select("event", "Event", EVENTS),
    select("outcome", "Outcome", [["", "Any"], ...Object.entries(OUTCOMES).map(([v, [t]]) => [v, t])]),
    input("study", "Study Instance UID", { type: "search", autocomplete: "off" }),
    h("div", { className: "actions" },
      h("button", { type: "submit", className: "primary" }, "Filter"),
      h("button", { type: "button", onclick: () => { location.hash = "#/audit"; } }, "Clear")));
  const link = (changes) => {
    const query = new URLSearchParams();
    for (const [f, v] of Object.entries({ ...criteria, ...changes })) if (v) query.set(f, v);
    return `#/audit${query.size ? `?${query}` : ""}`;
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const next = link(Object.fromEntries(FIELDS.map((f) => [f, data.get(f) ?? ""])) );
    if (location.hash === next) window.dispatchEvent(new HashChangeEvent("hashchange"));
    else location.hash = next;
  });
  const results = h("section", { "aria-labelledby": "audit-title", "aria-live": "polite" },
    h("p", { className: "muted" }, "Loading…"));
  mount(main, h("h1", {}, "Audit log"), form, results);

  const query = new URLSearchParams({ limit: PAGE_SIZE, offset });
  if (criteria.from) query.set("since", dayStart(criteria.from));
  if (criteria.to) query.set("until", dayStart(criteria.to, 1));
  for (const [f, name] of [["user", "user"], ["event", "event"], ["outcome", "outcome"], ["study", "study"]]) {
    if (criteria[f].trim()) query.set(name, criteria[f].trim());
  }
  let page;
  try {
    page = await fetchJson("the API", `/audit?${query}`);
  } catch (error) {
    if (error.status === 403) {
      mount(results, h("p", { className: "notice", role: "status" },
        "The audit log is shown to administrators only; your account does not have the admin scope."));
    } else {
      mount(results, errorBox(error.message));
    }
    return null;
  }
  const shown = page.events.length;
  const pager = h("nav", { className: "pager", "aria-label": "Pages" },
    h("a", { className: "button", href: link({ offset: Math.max(0, offset - PAGE_SIZE) || "" }), hidden: offset === 0 }, "‹ Newer"),
    h("span", { className: "muted" }, shown ? `Records ${offset + 1}–${offset + shown} of ${formatNumber(page.total)}` : ""),
    h("a", { className: "button", href: link({ offset: offset + PAGE_SIZE }), hidden: offset + shown >= page.total }, "Older ›"));
  if (!shown) {
    mount(results, h("h2", { id: "audit-title" }, "Records"),
      h("p", { className: "notice", role: "status" }, offset ? "No more records." : "No record matches these filters."),
      offset ? pager : null);
    return null;
  }
  mount(results, h("h2", { id: "audit-title" }, "Records"),
    h("div", { className: "table-wrap" }, h("table", { "aria-label": "Audit records" },
      h("thead", {}, h("tr", {}, ["Time", "Event", "Outcome", "User", "From", "Service", "Request", "Study", "Instances"]
        .map((t, i) => h("th", { scope: "col", className: i === 8 ? "num" : "" }, t)))),
      h("tbody", {}, page.events.map(row)))),
    pager);
  return null;
}

function row(e) {
  const [outcome, tone] = OUTCOMES[e.outcome] ?? [`Outcome ${e.outcome}`, "bad"];
  const request = e.http_method
    ? `${e.http_method} ${e.route} → ${e.http_status ?? "–"}`
    : `${e.dimse_command}${e.dimse_status === null ? "" : ` → 0x${e.dimse_status.toString(16).toUpperCase().padStart(4, "0")}`}`;
  return h("tr", { "data-event": e.event_id, "data-outcome": e.outcome },
    h("td", {}, h("time", { datetime: e.time }, formatDateTime(e.time))),
    h("td", {}, e.event_meaning || e.event_id, h("div", { className: "muted" }, ACTIONS[e.action] ?? e.action)),
    h("td", {}, h("strong", { className: `outcome ${tone}` }, outcome),
      e.outcome_description ? h("div", { className: "muted detail" }, e.outcome_description) : null),
    h("td", {}, e.user_id || "–", e.user_method ? h("div", { className: "muted" }, e.user_method) : null),
    h("td", {}, e.network_address || "–",
      e.calling_ae ? h("div", { className: "muted" }, `${e.calling_ae} → ${e.called_ae}${e.destination_ae ? ` → ${e.destination_ae}` : ""}`) : null),
    h("td", {}, e.source),
    h("td", {}, h("code", {}, request), e.query ? h("div", { className: "muted detail" }, e.query) : null),
    h("td", {}, e.study_uid ? h("a", { href: `#/audit?study=${encodeURIComponent(e.study_uid)}`, className: "uid" }, e.study_uid) : "–"),
    h("td", { className: "num" }, e.instance_count ? formatNumber(e.instance_count) : ""));
}
