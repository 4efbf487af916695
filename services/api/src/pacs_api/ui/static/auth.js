// Signing in to services that require a bearer token (RFC 6750): the person pastes an API key
// or a JWT; it is kept in sessionStorage (this tab only, gone when it closes) and sent as
// "Authorization: Bearer" on the API's, the exporter's and the bridge's calls.
import { h } from "./dom.js";

const KEY = "pacs.token";

export function token() {
  return sessionStorage.getItem(KEY);
}

/** Headers that carry the token, if there is one. */
export function authHeaders() {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

export function signOut() {
  sessionStorage.removeItem(KEY);
  showSignOut();
}

/** The sign-out link in the header, shown while a token is kept. */
export function showSignOut() {
  const link = document.getElementById("sign-out");
  if (link) link.hidden = !token();
}

/** A sign-in form; *onSignedIn* runs once a token is kept. *reason* says why it is asked for. */
export function signInForm(reason, onSignedIn) {
  const input = h("input", {
    type: "password", name: "token", required: true, autocomplete: "off", spellcheck: "false",
    "aria-describedby": "sign-in-help",
  });
  const form = h("form", { className: "card sign-in", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in"),
    h("p", { className: "muted", id: "sign-in-help" }, reason, " Paste an API key (pacs_…, from ",
      h("code", {}, "pacs-api api-key new"), ") or a JWT from your identity provider. It is kept in this tab " +
      "only, until you sign out or close it."),
    h("label", {}, "Token", input),
    h("div", { className: "actions" }, h("button", { type: "submit", className: "primary" }, "Sign in")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = input.value.trim().replace(/^Bearer\s+/i, "");
    if (!value) return;
    sessionStorage.setItem(KEY, value);
    showSignOut();
    onSignedIn();
  });
  queueMicrotask(() => input.focus());
  return form;
}

/**
 * Show *url* (an image the service renders) in *img*: directly without a token, else fetched
 * with it (an <img> cannot send headers) and shown from a blob: URL.
 */
export async function setImageSource(img, url) {
  if (!token()) { img.src = url; return; }
  img.dataset.source = url;  // the latest asked for wins (scrolling asks for many)
  try {
    const response = await fetch(url, { headers: authHeaders() });
    if (!response.ok) throw new Error(String(response.status));
    const blob = await response.blob();
    if (img.dataset.source !== url) return;
    const objectUrl = URL.createObjectURL(blob);
    img.addEventListener("load", () => URL.revokeObjectURL(objectUrl), { once: true });
    img.src = objectUrl;
  } catch {
    img.dispatchEvent(new Event("error"));
  }
}

/** Download *url* as a file, sending the token (a plain link cannot). */
export async function downloadWithToken(url, fallbackName) {
  const response = await fetch(url, { headers: authHeaders() });
  if (!response.ok) throw new Error(`the download answered ${response.status}`);
  const disposition = response.headers.get("Content-Disposition") ?? "";
  const name = /filename="?([^";]+)"?/.exec(disposition)?.[1] ?? fallbackName;
  const objectUrl = URL.createObjectURL(await response.blob());
  const link = h("a", { href: objectUrl, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(objectUrl), 10_000);
}
