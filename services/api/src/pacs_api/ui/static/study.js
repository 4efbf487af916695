// A study: its series with thumbnails, a viewer for the chosen series, mesh export for CT.
import { h, mount, errorBox, formatDate } from "./dom.js";
import { qido, value, TAG, dicomwebRoot } from "./api.js";
import { Viewer } from "./viewer.js";
import { setImageSource } from "./auth.js";
import { exportPanel } from "./export.js";

export async function studyPage(main, { config, args }) {
  const [studyUid, wantedSeries] = args;
  const studies = await qido("/studies", {
    StudyInstanceUID: studyUid,
    includefield: [TAG.StudyDescription, TAG.PatientBirthDate, TAG.PatientSex],
  });
  if (!studies.length) {
    mount(main, h("h1", {}, "Study not found"), errorBox(`No study ${studyUid} in the archive.`),
      h("p", {}, h("a", { href: "#/studies" }, "Back to the studies")));
    return null;
  }
  const study = studies[0];
  const series = await qido(`/studies/${encodeURIComponent(studyUid)}/series`, {
    includefield: [TAG.SeriesDescription, TAG.NumberOfSeriesRelatedInstances],
  });
  series.sort((a, b) => Number(value(a, TAG.SeriesNumber) || 0) - Number(value(b, TAG.SeriesNumber) || 0));

  const root = await dicomwebRoot();
  const ohif = config.ohif_url
    ? h("a", { className: "button", href: `${config.ohif_url}/viewer?StudyInstanceUIDs=${encodeURIComponent(studyUid)}`,
      target: "_blank", rel: "noopener" }, "Open in OHIF")
    : null;
  const work = h("div", { className: "work" });
  const cards = series.map((s) => seriesCard(root, studyUid, s, () => select(s)));

  let viewer = null;
  function select(s) {
    const uid = value(s, TAG.SeriesInstanceUID);
    for (const card of cards) card.setAttribute("aria-current", String(card.dataset.series === uid));
    if (viewer) viewer.destroy();
    viewer = new Viewer(root, studyUid, uid, value(s, TAG.SeriesDescription) || `Series ${value(s, TAG.SeriesNumber)}`);
    const side = value(s, TAG.Modality) === "CT"
      ? exportPanel(config, studyUid, uid)
      : h("section", { className: "card" }, h("h2", {}, "Mesh export"),
        h("p", { className: "muted" }, "Meshes are made from CT series."));
    mount(work, viewer.element, side);
    viewer.load();
    history.replaceState(null, "", `#/study/${encodeURIComponent(studyUid)}/${encodeURIComponent(uid)}`);
  }

  const birth = formatDate(value(study, TAG.PatientBirthDate));
  mount(main,
    h("p", {}, h("a", { href: "#/studies" }, "‹ Studies")),
    h("h1", {}, value(study, TAG.PatientName) || "(no name)",
      h("span", { className: "muted" }, ` · ${value(study, TAG.StudyDescription) || "Study"}`)),
    h("div", { className: "actions" },
      h("span", {}, `Patient ID ${value(study, TAG.PatientID) || "–"}`),
      birth ? h("span", {}, `born ${birth}`) : null,
      h("span", {}, `Study date ${formatDate(value(study, TAG.StudyDate)) || "–"}`),
      value(study, TAG.AccessionNumber) ? h("span", {}, `Accession ${value(study, TAG.AccessionNumber)}`) : null,
      ohif),
    h("h2", {}, `Series (${series.length})`),
    series.length ? h("div", { className: "series-grid" }, cards) : h("p", { className: "notice" }, "This study has no series."),
    work);

  const first = series.find((s) => value(s, TAG.SeriesInstanceUID) === wantedSeries) ?? series[0];
  if (first) select(first);
  return () => viewer?.destroy();
}

function seriesCard(root, studyUid, s, onSelect) {
  const uid = value(s, TAG.SeriesInstanceUID);
  const description = value(s, TAG.SeriesDescription) || "(no description)";
  const count = value(s, TAG.NumberOfSeriesRelatedInstances);
  const img = h("img", {
    alt: `Thumbnail of series ${value(s, TAG.SeriesNumber)}: ${description}`, loading: "lazy", width: 128, height: 128,
  });
  img.addEventListener("error", () => { img.alt = "No thumbnail (not an image series)"; img.classList.add("broken"); });
  setImageSource(img, `${root}/studies/${encodeURIComponent(studyUid)}/series/${encodeURIComponent(uid)}/thumbnail`);
  return h("article", { className: "card series-card", "data-series": uid },
    img,
    h("div", { className: "title" }, `#${value(s, TAG.SeriesNumber) || "?"} ${description}`),
    h("div", { className: "muted" }, `${value(s, TAG.Modality) || "?"} · ${count || "?"} instances`),
    h("button", { type: "button", onclick: onSelect }, "View"));
}
