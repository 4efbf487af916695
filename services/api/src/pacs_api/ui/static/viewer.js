// A simple slice viewer on WADO-RS /rendered (PS3.18 §10.4.1.1.4): one rendered JPEG per slice,
// the window (§8.3.5.1.4) chosen by preset, slices by wheel, keys or slider, zoom by CSS.
import { h, mount, errorBox } from "./dom.js";
import { qido, value, TAG } from "./api.js";
import { setImageSource } from "./auth.js";

// Common CT window presets (center, width) in HU; "Image" uses the window stored in the image.
export const PRESETS = [
  { name: "Image", window: null },
  { name: "Soft tissue", window: [40, 400] },
  { name: "Lung", window: [-600, 1500] },
  { name: "Bone", window: [400, 1800] },
  { name: "Brain", window: [40, 80] },
];
const ZOOMS = [0.5, 0.75, 1, 1.5, 2, 3, 4];

export class Viewer {
  constructor(root, studyUid, seriesUid, title) {
    this.path = `/studies/${encodeURIComponent(studyUid)}/series/${encodeURIComponent(seriesUid)}`;
    this.base = `${root}${this.path}`;
    this.instances = [];
    this.index = 0;
    this.preset = PRESETS[0];
    this.zoom = 2;
    this.cache = new Map();
    this.image = h("img", { alt: "", draggable: "false" });
    this.overlay = h("div", { className: "overlay", "aria-hidden": "true" });
    this.viewport = h("div", {
      className: "viewport", tabindex: "0", role: "img",
      "aria-label": `${title}: use the mouse wheel or the arrow keys to change slice, + and - to zoom`,
    }, this.image, this.overlay);
    this.slider = h("input", { type: "range", min: "1", max: "1", value: "1", "aria-label": "Slice" });
    this.position = h("output", { "aria-live": "polite" }, "");
    this.presetButtons = PRESETS.map((p) => h("button", {
      type: "button", "aria-pressed": String(p === this.preset), onclick: () => this.setPreset(p),
    }, p.name));
    this.zoomLabel = h("span", { className: "muted" }, "");
    this.status = h("div");
    this.element = h("section", { className: "card viewer", "aria-label": "Viewer" },
      h("h2", {}, title), this.status, this.viewport,
      h("div", { className: "viewer-controls" },
        this.slider,
        h("div", { className: "actions" }, this.position),
        h("div", { className: "actions", role: "group", "aria-label": "Window presets" }, this.presetButtons),
        h("div", { className: "actions", role: "group", "aria-label": "Zoom" },
          h("button", { type: "button", "aria-label": "Zoom out", onclick: () => this.setZoom(-1) }, "−"),
          h("button", { type: "button", "aria-label": "Zoom in", onclick: () => this.setZoom(1) }, "+"),
          h("button", { type: "button", onclick: () => { this.zoom = 2; this.render(); } }, "Fit"),
          this.zoomLabel)));

    this.slider.addEventListener("input", () => this.show(Number(this.slider.value) - 1));
    this.viewport.addEventListener("wheel", (event) => {
      event.preventDefault();
      this.show(this.index + Math.sign(event.deltaY));
    }, { passive: false });
    this.viewport.addEventListener("keydown", (event) => this.key(event));
    this.image.addEventListener("error", () => {
      if (this.image.getAttribute("src")) mount(this.status, errorBox("This slice could not be rendered."));
    });
    this.image.addEventListener("load", () => mount(this.status));
  }

  async load() {
    try {
      const instances = await qido(`${this.path}/instances`, {});
      instances.sort((a, b) => Number(value(a, TAG.InstanceNumber) || 0) - Number(value(b, TAG.InstanceNumber) || 0));
      this.instances = instances.map((i) => value(i, TAG.SOPInstanceUID));
    } catch (error) {
      mount(this.status, errorBox(error.message));
      return;
    }
    if (!this.instances.length) { mount(this.status, errorBox("This series has no instances.")); return; }
    this.slider.max = String(this.instances.length);
    this.show(Math.floor(this.instances.length / 2));
  }

  url(i) {
    const window = this.preset.window ? `?window=${this.preset.window[0]},${this.preset.window[1]},linear` : "";
    return `${this.base}/instances/${encodeURIComponent(this.instances[i])}/rendered${window}`;
  }

  show(i) {
    if (!this.instances.length) return;
    this.index = Math.min(this.instances.length - 1, Math.max(0, i));
    this.render();
    // Fetch the neighbours now, so that scrolling does not wait on each slice.
    for (const j of [this.index + 1, this.index - 1, this.index + 2, this.index - 2]) {
      if (j >= 0 && j < this.instances.length && !this.cache.has(this.url(j))) {
        const img = new Image();
        setImageSource(img, this.url(j));
        this.cache.set(this.url(j), img);
        if (this.cache.size > 64) this.cache.delete(this.cache.keys().next().value);
      }
    }
  }

  render() {
    const n = this.instances.length;
    setImageSource(this.image, this.url(this.index));
    this.image.dataset.slice = String(this.index + 1);
    this.image.style.transform = `scale(${ZOOMS[this.zoom]})`;
    this.slider.value = String(this.index + 1);
    const window = this.preset.window ? `W ${this.preset.window[1]} / L ${this.preset.window[0]}` : "image window";
    this.position.textContent = `Slice ${this.index + 1} of ${n} · ${this.preset.name} (${window}) · zoom ${ZOOMS[this.zoom] * 100}%`;
    this.overlay.textContent = `${this.index + 1}/${n}`;
    this.zoomLabel.textContent = `${ZOOMS[this.zoom] * 100}%`;
  }

  setPreset(preset) {
    this.preset = preset;
    for (const [k, button] of this.presetButtons.entries()) button.setAttribute("aria-pressed", String(PRESETS[k] === preset));
    this.cache.clear();
    this.show(this.index);
  }

  setZoom(step) {
    this.zoom = Math.min(ZOOMS.length - 1, Math.max(0, this.zoom + step));
    this.render();
  }

  key(event) {
    const moves = { ArrowUp: -1, ArrowLeft: -1, ArrowDown: 1, ArrowRight: 1, PageUp: -10, PageDown: 10 };
    if (event.key in moves) this.show(this.index + moves[event.key]);
    else if (event.key === "Home") this.show(0);
    else if (event.key === "End") this.show(this.instances.length - 1);
    else if (event.key === "+" || event.key === "=") this.setZoom(1);
    else if (event.key === "-") this.setZoom(-1);
    else return;
    event.preventDefault();
  }

  destroy() {
    this.cache.clear();
    this.image.removeAttribute("src");
  }
}
