// "Export a mesh" of a CT series on the mesh exporter: preset and format, a job submitted,
// its progress polled, then the download link and the mesh's report.
import { h, mount, errorBox, formatDateTime } from "./dom.js";
import { fetchJson } from "./api.js";
import { downloadWithToken, token } from "./auth.js";

const SERVICE = "The mesh exporter";
const FORMATS = [
  ["stl", "STL (binary)"], ["stl-ascii", "STL (text)"], ["ply", "PLY"], ["obj", "OBJ"],
];
const POLL_MS = 500;
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);

export function exportPanel(config, studyUid, seriesUid) {
  const section = h("section", { className: "card", "aria-labelledby": "export-title" },
    h("h2", { id: "export-title" }, "Export a mesh"));
  if (!config.exporter_url) {
    section.append(h("p", { className: "notice" }, "The mesh exporter is not configured for this dashboard " +
      "(set PACS_API_UI_EXPORTER_URL, and PACS_EXPORTER_CORS_ALLOW_ORIGINS on the exporter)."));
    return section;
  }
  const base = config.exporter_url;
  const preset = h("select", { name: "preset" }, h("option", { value: "bone" }, "bone"));
  const format = h("select", { name: "format" }, FORMATS.map(([v, label]) => h("option", { value: v }, label)));
  const submit = h("button", { type: "submit", className: "primary" }, "Export");
  const form = h("form", { className: "actions" },
    h("label", {}, "Preset", preset), h("label", {}, "Format", format), submit);
  const job = h("div", { "aria-live": "polite" });
  section.append(form, job);

  fetchJson(SERVICE, `${base}/presets`).then((presets) => {
    mount(preset, presets.map((p) => h("option", { value: p.name, title: p.description, selected: p.name === "bone" },
      `${p.name} (${p.level_hu} HU)`)));
  }).catch((error) => mount(job, errorBox(error.message)));

  let timer = null;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearTimeout(timer);
    submit.disabled = true;
    mount(job, h("p", { className: "muted" }, "Submitting…"));
    try {
      const created = await fetchJson(SERVICE, `${base}/exports`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ study: studyUid, series: seriesUid, preset: preset.value, format: format.value }),
      });
      await poll(created.id);
    } catch (error) {
      mount(job, errorBox(error.message));
      submit.disabled = false;
    }
  });

  async function poll(id) {
    let current;
    try {
      current = await fetchJson(SERVICE, `${base}/exports/${id}`);
    } catch (error) {
      mount(job, errorBox(error.message));
      submit.disabled = false;
      return;
    }
    show(current);
    if (FINISHED.has(current.state)) { submit.disabled = false; return; }
    if (section.isConnected) timer = setTimeout(() => poll(id), POLL_MS);
  }

  function show(current) {
    const cancel = FINISHED.has(current.state) ? null : h("button", {
      type: "button",
      onclick: async () => {
        try { await fetchJson(SERVICE, `${base}/exports/${current.id}`, { method: "DELETE" }); } catch (e) { mount(job, errorBox(e.message)); }
      },
    }, "Cancel");
    mount(job,
      h("p", { className: "export-state" }, "Job ", h("code", {}, current.id.slice(0, 8)), ": ",
        h("strong", { className: `state-${current.state}`, "data-state": current.state }, current.state),
        ` · ${current.progress}%`),
      h("progress", { max: "100", value: String(current.progress), "aria-label": "Export progress" }),
      current.state === "failed" ? errorBox(current.error || "The export failed.") : null,
      current.file ? h("p", {}, h("a", {
        className: "button primary", href: `${base}${current.file}`, download: "",
        onclick: token() ? (event) => {
          event.preventDefault();  // a plain link cannot send the token
          downloadWithToken(`${base}${current.file}`, `mesh.${current.request.format}`)
            .catch((e) => mount(job, errorBox(e.message)));
        } : null,
      }, `Download ${current.request.format.toUpperCase()}`)) : null,
      current.report ? report(current.report) : null,
      h("p", { className: "muted" }, `Created ${formatDateTime(current.created_at)}`),
      cancel);
  }
  return section;
}

/** The mesh's report as a list of terms (nested objects flattened one level, numbers rounded). */
function report(data) {
  const items = [];
  const add = (key, v) => {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      for (const [k, inner] of Object.entries(v)) add(`${key} ${k}`, inner);
      return;
    }
    const text = Array.isArray(v) ? v.map(fmt).join(", ") : fmt(v);
    items.push(h("dt", {}, key.replaceAll("_", " ")), h("dd", {}, text));
  };
  for (const [key, v] of Object.entries(data)) add(key, v);
  return h("section", { "aria-label": "Mesh report" }, h("h3", {}, "Report"), h("dl", { className: "report" }, items));
}

function fmt(v) {
  if (typeof v === "number") return Number.isInteger(v) ? v.toLocaleString("en") : v.toFixed(3);
  if (Array.isArray(v)) return `[${v.map(fmt).join(", ")}]`;
  if (v !== null && typeof v === "object") return JSON.stringify(v);
  return String(v);
}
