// Calls to the API (same origin), the mesh exporter and the bridge's status API (other origins,
// by CORS), with errors a person can act on. Each call carries the signed-in token (auth.js).
import { authHeaders } from "./auth.js";

let config = null;

export class ServiceError extends Error {
  constructor(service, message, status = 0) {
    super(message);
    this.service = service;
    this.status = status;
  }
}

export async function loadConfig() {
  if (!config) config = await fetchJson("the API", "/ui/config.json");
  return config;
}

/** GET/POST *url* and parse JSON; a network failure or an error status is a ServiceError. */
export async function fetchJson(service, url, init = {}) {
  let response;
  try {
    response = await fetch(url, {
      ...init, headers: { Accept: "application/json", ...authHeaders(), ...(init.headers ?? {}) },
    });
  } catch {
    throw new ServiceError(service, `${service} cannot be reached at ${new URL(url, location.href).origin} ` +
      "(is it running, and does it allow this page's origin?)");
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = await response.json();
      detail = body.detail ?? body.title ?? detail;
      if (Array.isArray(detail)) detail = detail.map((d) => d.msg ?? JSON.stringify(d)).join("; ");
    } catch { /* not JSON */ }
    const error = new ServiceError(service, `${service} answered ${response.status}: ${detail}`, response.status);
    if (response.status === 401 && new URL(url, location.href).origin === location.origin) {
      // the API wants a (valid) token: the dashboard asks for one (app.js)
      window.dispatchEvent(new CustomEvent("pacs:unauthorized", { detail: error }));
    }
    throw error;
  }
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

// --- DICOMweb (PS3.18): QIDO-RS answers in DICOM JSON (PS3.18 F.2) ---------------------------

export const TAG = {
  StudyDate: "00080020", AccessionNumber: "00080050", ModalitiesInStudy: "00080061",
  Modality: "00080060", StudyDescription: "00081030", SeriesDescription: "0008103E",
  PatientName: "00100010", PatientID: "00100020", PatientBirthDate: "00100030", PatientSex: "00100040",
  StudyInstanceUID: "0020000D", SeriesInstanceUID: "0020000E", SOPInstanceUID: "00080018",
  SeriesNumber: "00200011", InstanceNumber: "00200013",
  NumberOfStudyRelatedSeries: "00201206", NumberOfStudyRelatedInstances: "00201208",
  NumberOfSeriesRelatedInstances: "00201209", WindowCenter: "00281050", WindowWidth: "00281051",
};

/** The first value of *tag* in a DICOM JSON dataset (a PN as its Alphabetic form, "^" as space). */
export function value(dataset, tag) {
  const element = dataset?.[tag];
  const first = element?.Value?.[0];
  if (first === undefined || first === null) return "";
  if (element.vr === "PN") return (first.Alphabetic ?? "").replaceAll("^", " ").trim();
  return first;
}

export function values(dataset, tag) {
  return dataset?.[tag]?.Value ?? [];
}

/** QIDO-RS search; an empty answer (204) is []. */
export async function qido(path, params = {}) {
  const { dicomweb_root: root } = await loadConfig();
  const query = new URLSearchParams();
  for (const [key, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    for (const item of Array.isArray(v) ? v : [v]) query.append(key, item);
  }
  const url = `${root}${path}${query.size ? `?${query}` : ""}`;
  const answer = await fetchJson("the API", url, { headers: { Accept: "application/dicom+json" } });
  return answer ?? [];
}

export async function dicomwebRoot() {
  return (await loadConfig()).dicomweb_root;
}
