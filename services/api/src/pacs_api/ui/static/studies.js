// The study list: QIDO-RS search (patient, date range, modality, accession) with paging.
import { h, mount, errorBox, formatDate, formatNumber } from "./dom.js";
import { qido, value, values, TAG } from "./api.js";

const PAGE_SIZE = 25;
const MODALITIES = ["", "CT", "MR", "CR", "DX", "US", "PT", "NM", "MG", "XA", "RF", "SEG", "M3D", "SR", "OT"];
const FIELDS = ["name", "id", "from", "to", "modality", "accession"];

/** "2024-01-31" -> "20240131". */
const da = (iso) => (iso ?? "").replaceAll("-", "");

function qidoParams(criteria, offset) {
  let name = criteria.name.trim();
  if (name && !/[*?]/.test(name)) name = `${name}*`;
  const from = da(criteria.from), to = da(criteria.to);
  return {
    PatientName: name,
    PatientID: criteria.id.trim(),
    StudyDate: from || to ? `${from}-${to}` : "",
    ModalitiesInStudy: criteria.modality,
    AccessionNumber: criteria.accession.trim(),
    fuzzymatching: name ? "true" : "",
    includefield: [TAG.StudyDescription, TAG.ModalitiesInStudy, TAG.NumberOfStudyRelatedSeries,
      TAG.NumberOfStudyRelatedInstances],
    limit: PAGE_SIZE + 1, // one more than shown: is there a next page?
    offset,
  };
}

export async function studiesPage(main, { params }) {
  const criteria = Object.fromEntries(FIELDS.map((f) => [f, params.get(f) ?? ""]));
  const offset = Math.max(0, Number.parseInt(params.get("offset") ?? "0", 10) || 0);

  const input = (field, label, attrs = {}) =>
    h("label", {}, label, h("input", { name: field, value: criteria[field], ...attrs }));
  const form = h("form", { className: "search card", role: "search", "aria-label": "Search studies" },
    input("name", "Patient name", { type: "search", autocomplete: "off", placeholder: "e.g. DOE or DOE^J*" }),
    input("id", "Patient ID", { type: "search", autocomplete: "off" }),
    input("from", "Study date from", { type: "date" }),
    input("to", "Study date to", { type: "date" }),
    h("label", {}, "Modality", h("select", { name: "modality" },
      MODALITIES.map((m) => h("option", { value: m, selected: m === criteria.modality }, m || "Any")))),
    input("accession", "Accession number", { type: "search", autocomplete: "off" }),
    h("div", { className: "actions" },
      h("button", { type: "submit", className: "primary" }, "Search"),
      h("button", { type: "button", onclick: () => { location.hash = "#/studies"; } }, "Clear")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const query = new URLSearchParams();
    for (const f of FIELDS) if (data.get(f)) query.set(f, data.get(f));
    const next = `#/studies${query.size ? `?${query}` : ""}`;
    if (location.hash === next) window.dispatchEvent(new HashChangeEvent("hashchange"));
    else location.hash = next;
  });

  const results = h("section", { "aria-labelledby": "results-title", "aria-live": "polite" },
    h("p", { className: "muted" }, "Searching…"));
  mount(main, h("h1", {}, "Studies"), form, results);

  let studies;
  try {
    studies = await qido("/studies", qidoParams(criteria, offset));
  } catch (error) {
    mount(results, errorBox(error.message));
    return;
  }
  const more = studies.length > PAGE_SIZE;
  studies = studies.slice(0, PAGE_SIZE);
  const pageLink = (newOffset) => {
    const query = new URLSearchParams();
    for (const f of FIELDS) if (criteria[f]) query.set(f, criteria[f]);
    if (newOffset) query.set("offset", newOffset);
    return `#/studies${query.size ? `?${query}` : ""}`;
  };
  const pager = h("nav", { className: "pager", "aria-label": "Pages" },
    h("a", { className: "button", href: pageLink(Math.max(0, offset - PAGE_SIZE)),
      "aria-disabled": offset === 0 ? "true" : undefined, hidden: offset === 0 }, "‹ Previous"),
    h("span", { className: "muted" },
      studies.length ? `Studies ${offset + 1}–${offset + studies.length}` : ""),
    h("a", { className: "button", href: pageLink(offset + PAGE_SIZE), hidden: !more }, "Next ›"));

  if (!studies.length) {
    mount(results, h("h2", { id: "results-title" }, "Results"),
      h("p", { className: "notice", role: "status" },
        offset ? "No more studies." : "No studies match this search."), offset ? pager : null);
    return;
  }
  const rows = studies.map((s) => {
    const uid = value(s, TAG.StudyInstanceUID);
    return h("tr", {},
      h("td", {}, h("a", { href: `#/study/${encodeURIComponent(uid)}` }, value(s, TAG.PatientName) || "(no name)")),
      h("td", {}, value(s, TAG.PatientID)),
      h("td", {}, formatDate(value(s, TAG.StudyDate))),
      h("td", {}, values(s, TAG.ModalitiesInStudy).join(", ")),
      h("td", {}, value(s, TAG.StudyDescription)),
      h("td", {}, value(s, TAG.AccessionNumber)),
      h("td", { className: "num" }, formatNumber(Number(value(s, TAG.NumberOfStudyRelatedSeries)))),
      h("td", { className: "num" }, formatNumber(Number(value(s, TAG.NumberOfStudyRelatedInstances)))));
  });
  mount(results, h("h2", { id: "results-title" }, "Results"),
    h("div", { className: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, ["Patient", "Patient ID", "Study date", "Modalities", "Description",
        "Accession", "Series", "Instances"].map((t, i) => h("th", { scope: "col", className: i > 5 ? "num" : "" }, t)))),
      h("tbody", {}, rows))),
    pager);
}
