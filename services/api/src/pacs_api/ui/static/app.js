// The dashboard's entry point: a hash router over the pages (no build step, no framework).
import { h, mount, errorBox } from "./dom.js";
import { loadConfig } from "./api.js";
import { signInForm, signOut, showSignOut, token } from "./auth.js";
import { studiesPage } from "./studies.js";
import { studyPage } from "./study.js";
import { nodesPage } from "./nodes.js";
import { usagePage } from "./usage.js";
import { auditPage } from "./audit.js";
import { quarantinePage } from "./quarantine.js";

// Each page renders into <main> and may return a cleanup function (timers, listeners).
// Issue 6 adds "quarantine" (admin) here and in index.html's navigation.
const PAGES = {
  studies: studiesPage,
  study: studyPage,
  nodes: nodesPage,
  usage: usagePage,
  audit: auditPage,
  quarantine: quarantinePage,
};

const main = document.getElementById("main");
let cleanup = null;

async function route() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [name, ...rest] = path.split("/");
  const page = PAGES[name || "studies"];
  if (cleanup) { cleanup(); cleanup = null; }
  for (const link of document.querySelectorAll("nav a[data-page]")) {
    const current = link.dataset.page === (name === "study" ? "studies" : name || "studies");
    if (current) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
  if (!page) {
    mount(main, h("h1", {}, "Not found"), errorBox(`There is no page "${name}".`),
      h("p", {}, h("a", { href: "#/studies" }, "Back to the studies")));
    return;
  }
  mount(main, h("p", { className: "muted" }, "Loading…"));
  try {
    const config = await loadConfig();
    cleanup = (await page(main, { config, args: rest.map(decodeURIComponent), params: new URLSearchParams(query) })) ?? null;
  } catch (error) {
    if (error.status === 401) return;  // the sign-in form is shown (below)
    mount(main, h("h1", {}, "Something went wrong"), errorBox(error.message));
  }
}

// The API answered 401 to some call of the page: ask for a token, then show the page again.
window.addEventListener("pacs:unauthorized", (event) => {
  if (main.querySelector("form.sign-in")) return;
  if (cleanup) { cleanup(); cleanup = null; }
  const reason = token() ? `The token was refused (${event.detail.message}).` : "This server requires a token.";
  if (token()) signOut();
  mount(main, signInForm(reason, route));
});

document.getElementById("sign-out")?.addEventListener("click", (event) => {
  event.preventDefault();
  signOut();
  route();
});
showSignOut();
window.addEventListener("hashchange", route);
route();
