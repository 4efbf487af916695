// DICOM nodes, routes and store-and-forward progress, from the bridge's status API (/routing),
// refreshed every few seconds, with a retry button per destination with failed deliveries.
import { h, mount, errorBox, formatDateTime, formatNumber } from "./dom.js";
import { fetchJson } from "./api.js";

const SERVICE = "The DIMSE bridge status API";
const REFRESH_MS = 5000;

export async function nodesPage(main, { config }) {
  const body = h("div", { "aria-live": "polite" });
  mount(main, h("h1", {}, "DICOM nodes and forwarding"), body);
  if (!config.bridge_status_url) {
    mount(body, h("p", { className: "notice" }, "The DIMSE bridge's status API is not configured for this dashboard " +
      "(set PACS_API_UI_BRIDGE_STATUS_URL, and PACS_BRIDGE_ADMIN_CORS_ALLOW_ORIGINS on the bridge)."));
    return null;
  }
  const base = config.bridge_status_url;
  let timer = null;
  let stopped = false;

  async function refresh() {
    clearTimeout(timer);
    try {
      render(await fetchJson(SERVICE, `${base}/routing`));
    } catch (error) {
      mount(body, errorBox(error.message), h("button", { type: "button", onclick: refresh }, "Try again"));
      return;
    }
    if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
  }

  async function retry(title, button) {
    button.disabled = true;
    try {
      const { requeued } = await fetchJson(SERVICE, `${base}/routing/destinations/${encodeURIComponent(title)}/retry`, { method: "POST" });
      button.textContent = `Requeued ${requeued}`;
    } catch (error) {
      body.prepend(errorBox(error.message));
    }
    setTimeout(refresh, 300);
  }

  function render(status) {
    const cell = (v, cls = "") => h("td", { className: cls }, v ?? "–");
    const head = (...titles) => h("thead", {}, h("tr", {}, titles.map((t) => h("th", { scope: "col" }, t))));
    const nodes = status.nodes ?? [];
    mount(body,
      h("p", { className: "actions" },
        h("span", { className: status.leading ? "ok" : "warn" }, status.leading ? "This bridge is routing" : "Standing by (another replica routes)"),
        h("span", { className: "muted" }, `change feed entry ${status.cursor}`),
        h("button", { type: "button", onclick: refresh }, "Refresh")),
      status.feed_error ? errorBox(`The change feed cannot be read: ${status.feed_error}`) : null,
      h("h2", {}, "Nodes"),
      nodes.length
        ? h("div", { className: "table-wrap" }, h("table", { "aria-label": "Nodes" }, head("AE title", "Host", "Port", "TLS"),
          h("tbody", {}, nodes.map((n) => h("tr", {}, cell(n.ae_title), cell(n.host), cell(n.port), cell(n.tls ? "yes" : "no"))))))
        : h("p", { className: "muted" }, "No nodes are configured."),
      h("h2", {}, "Routes"),
      status.routes.length
        ? h("div", { className: "table-wrap" }, h("table", { "aria-label": "Routes" }, head("Route", "Sends to"),
          h("tbody", {}, status.routes.map((r) => h("tr", {}, cell(r.name), cell(r.to.join(", ")))))))
        : h("p", { className: "muted" }, "No routes are configured: received studies are not forwarded."),
      h("h2", {}, "Forwarding"),
      status.destinations.length
        ? h("div", { className: "table-wrap" }, h("table", { "aria-label": "Forwarding" },
          head("Destination", "Address", "Pending", "Delivered", "Failed", "Cancelled", "Oldest pending", "Backoff until", "Last error", "Last success", ""),
          h("tbody", {}, status.destinations.map((d) => {
            const button = h("button", { type: "button", "aria-label": `Retry failed deliveries to ${d.ae_title}` }, "Retry");
            button.addEventListener("click", () => retry(d.ae_title, button));
            return h("tr", { "data-destination": d.ae_title },
              cell(d.ae_title), cell(d.host ? `${d.host}:${d.port}` : "not configured"),
              cell(formatNumber(d.pending), "num"), cell(formatNumber(d.delivered), "num"),
              cell(formatNumber(d.failed), d.failed ? "num bad" : "num"), cell(formatNumber(d.cancelled), "num"),
              cell(formatDateTime(d.oldest_pending_at)), cell(formatDateTime(d.next_attempt_at)),
              cell(d.last_error ? `${d.last_error} (${formatDateTime(d.last_error_at)})` : "–", d.last_error ? "bad" : ""),
              cell(formatDateTime(d.last_success_at)), h("td", {}, button));
          }))))
        : h("p", { className: "muted" }, "Nothing has been routed yet."));
  }

  await refresh();
  return () => { stopped = true; clearTimeout(timer); };
}
