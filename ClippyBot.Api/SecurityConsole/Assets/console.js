// ClippyBot security console: signs in at Identity (authorization code + PKCE), keeps the access token in memory only,
// and calls the Api's administrator endpoints. Every value is rendered with textContent: alert subjects and samples carry
// what attackers sent.
"use strict";

const state = { token: null, config: null };
const $ = (id) => document.getElementById(id);

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    // A refused action is already on the page (api() shows the problem); anything else is shown too, never left unhandled.
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), (event) => Promise.resolve().then(() => value(event)).catch((error) => {
      if (error.message !== "signed out" && $("problem").hidden) showProblem(error.message);
    }));
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const when = (value) => (value ? new Date(value).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC") : "—");

function showProblem(message) {
  const problem = $("problem");
  problem.textContent = message || "";
  problem.hidden = !message;
}

function say(message) {
  $("status").textContent = message || "";
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: Object.assign({ Authorization: "Bearer " + state.token }, body === undefined ? {} : { "Content-Type": "application/json" }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    state.token = null;
    showProblem("Your sign-in has ended. Sign in again.");
    $("sign-in").hidden = false;
    throw new Error("signed out");
  }
  const type = response.headers.get("Content-Type") || "";
  const payload = type.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const errors = payload && payload.errors ? " " + Object.values(payload.errors).flat().join(" ") : "";
    const text = payload ? (payload.title || "Refused") + (payload.detail ? ": " + payload.detail : "") + errors : "HTTP " + response.status;
    showProblem(text);
    throw new Error(text);
  }
  showProblem("");
  return payload;
}

// --- Sign-in: authorization code with PKCE; the verifier and state live in sessionStorage for the round trip only.
function base64Url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function signIn() {
  const verifier = base64Url(crypto.getRandomValues(new Uint8Array(32)));
  const challenge = base64Url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const nonce = base64Url(crypto.getRandomValues(new Uint8Array(16)));
  sessionStorage.setItem("console-pkce", JSON.stringify({ verifier, nonce }));
  const url = new URL("/connect/authorize", state.config.authority);
  url.search = new URLSearchParams({
    client_id: state.config.clientId, response_type: "code", scope: "openid api", redirect_uri: state.config.redirectUri,
    code_challenge: challenge, code_challenge_method: "S256", state: nonce,
  }).toString();
  location.assign(url.toString());
}

async function redeem(params) {
  const saved = JSON.parse(sessionStorage.getItem("console-pkce") || "null");
  sessionStorage.removeItem("console-pkce");
  history.replaceState(null, "", location.pathname + "#alerts");
  if (!saved || params.get("state") !== saved.nonce) {
    showProblem("That sign-in did not start here; sign in again.");
    return false;
  }
  const response = await fetch(new URL("/connect/token", state.config.authority), {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code", client_id: state.config.clientId, code: params.get("code"),
      redirect_uri: state.config.redirectUri, code_verifier: saved.verifier,
    }),
  });
  const tokens = await response.json();
  if (!response.ok || !tokens.access_token) {
    showProblem("Identity did not sign you in: " + (tokens.error_description || tokens.error || response.status));
    return false;
  }
  state.token = tokens.access_token;
  return true;
}

// --- Views
const views = {
  alerts: renderAlerts,
  incidents: renderIncidents,
  incident: renderIncident,
};

async function route() {
  if (!state.token) return;
  const [name, id] = (location.hash.slice(1) || "alerts").split("/");
  const view = $("view");
  try {
    const content = await (views[name] || renderAlerts)(id);
    view.replaceChildren(content);
  } catch (error) {
    if (error.message !== "signed out") say("");
  }
}

function severityCell(severity) {
  return el("td", { class: "severity-" + severity, text: severity });
}

async function renderAlerts() {
  const filter = sessionStorage.getItem("console-alert-filter") || "firing";
  const page = await api("GET", "/api/admin/alerts?pageSize=200" + (filter === "all" ? "" : "&status=" + filter));
  say(page.alerts.length + " " + (filter === "all" ? "" : filter + " ") + "alerts");
  const rows = page.alerts.map((a) => el("tr", { "data-alert": a.id },
    el("td", {}, el("input", { type: "checkbox", value: a.id, "aria-label": "Select alert " + a.rule + " for " + a.subject })),
    severityCell(a.severity), el("td", { text: a.rule }), el("td", {}, el("code", { text: a.subject })), el("td", { text: a.status }),
    el("td", { text: a.count }), el("td", { text: when(a.firstSeen) }), el("td", { text: when(a.lastSeen) })));
  const filters = el("p", {}, "Show: ", ...["firing", "resolved", "all"].map((f) =>
    el("button", { type: "button", "aria-pressed": String(f === filter), onclick: () => { sessionStorage.setItem("console-alert-filter", f); route(); } }, f)));
  const table = el("table", {},
    el("thead", {}, el("tr", {}, ...["", "Severity", "Rule", "Subject", "Status", "Count", "First seen", "Last seen"].map((h) => el("th", { text: h })))),
    el("tbody", {}, rows));
  const form = el("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      const alertIds = [...table.querySelectorAll("input[type=checkbox]:checked")].map((c) => c.value);
      const data = new FormData(event.target);
      const detail = await api("POST", "/api/admin/incidents", { title: data.get("title"), severity: data.get("severity"), summary: data.get("summary"), alertIds });
      location.hash = "incident/" + detail.incident.id;
    },
  },
  el("h2", { text: "Open an incident from the selected alerts" }),
  el("label", {}, "Title", el("input", { name: "title", required: true, maxlength: 200 })),
  severitySelect(),
  el("label", {}, "Summary", el("textarea", { name: "summary", rows: 2, maxlength: 4000 })),
  el("button", { type: "submit" }, "Open incident"));
  return el("div", {}, el("h2", { text: "Alerts" }), filters, table, form);
}

function severitySelect() {
  return el("label", {}, "Severity", el("select", { name: "severity" },
    ...["critical", "high", "medium", "low", "info"].map((s) => el("option", { value: s, selected: s === "high" }, s))));
}

async function renderIncidents() {
  const incidents = await api("GET", "/api/admin/incidents");
  say(incidents.length + " incidents");
  const rows = incidents.map((i) => el("tr", {},
    el("td", {}, el("a", { href: "#incident/" + i.id, text: i.title })), severityCell(i.severity), el("td", { text: i.status }),
    el("td", { text: when(i.openedAt) }), el("td", {}, clock(i))));
  const form = el("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      const data = new FormData(event.target);
      const detail = await api("POST", "/api/admin/incidents", { title: data.get("title"), severity: data.get("severity"), summary: data.get("summary") });
      location.hash = "incident/" + detail.incident.id;
    },
  },
  el("h2", { text: "Open an incident by hand" }),
  el("label", {}, "Title", el("input", { name: "title", required: true, maxlength: 200 })),
  severitySelect(),
  el("label", {}, "Summary", el("textarea", { name: "summary", rows: 2, maxlength: 4000 })),
  el("button", { type: "submit" }, "Open incident"));
  return el("div", {}, el("h2", { text: "Incidents" }),
    el("table", {}, el("thead", {}, el("tr", {}, ...["Title", "Severity", "Status", "Opened", "Notification"].map((h) => el("th", { text: h })))), el("tbody", {}, rows)),
    form);
}

function clock(incident) {
  if (!incident.personalDataAffectedAt) return el("span", { class: "muted", text: "no personal data marked" });
  if (incident.notifiedAt) return el("span", { text: "notified " + when(incident.notifiedAt) });
  if (incident.notificationOverdue) return el("span", { class: "overdue", text: "OVERDUE since " + when(incident.notifyBy) });
  const hours = Math.max(0, (new Date(incident.notifyBy) - Date.now()) / 3600000);
  return el("span", { class: "clock", text: "notify by " + when(incident.notifyBy) + " (" + hours.toFixed(1) + " h left)" });
}

const phases = ["detection", "containment", "investigation", "remediation", "closed"];

function action(title, fields, submit, label) {
  return el("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      const data = new FormData(event.target);
      await submit(data);
      await route();
      say(title + ": done");
    },
  }, el("h3", { text: title }), ...fields, el("button", { type: "submit" }, label || title));
}

const field = (label, name, attributes) => el("label", {}, label, el(attributes && attributes.rows ? "textarea" : "input", Object.assign({ name }, attributes || {})));

async function renderIncident(id) {
  const detail = await api("GET", "/api/admin/incidents/" + encodeURIComponent(id));
  const i = detail.incident;
  const base = "/api/admin/incidents/" + i.id;
  say("Incident " + i.title + " (" + i.status + ")");
  const next = phases.slice(phases.indexOf(i.status) + 1);
  const open = i.status !== "closed";
  const parts = [
    el("h2", { text: i.title }),
    el("p", {}, el("span", { class: "severity-" + i.severity, text: i.severity }), " · status ", el("strong", { "data-incident-status": true, text: i.status }),
      " · opened " + when(i.openedAt) + " by ", el("code", { text: i.openedBy }), " · ", clock(i)),
    el("p", { text: detail.summary }),
  ];
  if (open) {
    parts.push(el("p", {}, "Move to: ", ...next.map((phase) => el("button", {
      type: "button", onclick: async () => { await api("POST", base + "/status", { status: phase }); await route(); },
    }, phase))));
  }
  parts.push(el("h3", { text: "Timeline" }), el("ol", { class: "timeline" }, detail.timeline.map((t) => el("li", {},
    el("span", { class: "muted", text: when(t.at) + " " }), el("span", { class: "kind", text: t.kind }), el("span", { text: t.text }),
    el("span", { class: "muted", text: " — " + t.actor })))));
  if (detail.alerts.length) {
    parts.push(el("h3", { text: "Alerts" }), el("ul", {}, detail.alerts.map((a) => el("li", {}, el("span", { class: "severity-" + a.severity, text: a.severity + " " }),
      a.rule + " for ", el("code", { text: a.subject }), " — " + a.count + " since " + when(a.firstSeen)))));
  }
  parts.push(el("h3", { text: "Affected" }), detail.affected.length
    ? el("ul", {}, detail.affected.map((s) => el("li", {}, s.kind + " ", el("code", { text: s.id }), " (" + s.source + ")")))
    : el("p", { class: "muted", text: "Nobody named yet." }));
  if (detail.notifications.length) {
    parts.push(el("h3", { text: "Notifications" }), el("table", {},
      el("thead", {}, el("tr", {}, ...["Person", "As", "Queued", "Delivered", "Problem"].map((h) => el("th", { text: h })))),
      el("tbody", {}, detail.notifications.map((n) => el("tr", {}, el("td", {}, el("code", { text: n.userId })), el("td", { text: n.audience }),
        el("td", { text: when(n.queuedAt) }), el("td", { text: when(n.deliveredAt) }), el("td", { text: n.failure || "" }))))));
  }
  if (detail.review) parts.push(el("h3", { text: "Post-incident review" }), el("p", { text: detail.review }));
  if (open) {
    parts.push(
      action("Contain", [
        el("label", {}, "Containment action", el("select", { name: "action" },
          el("option", { value: "lock-account" }, "Lock an account"), el("option", { value: "revoke-sessions" }, "End every session of an account"),
          el("option", { value: "disable-api-key" }, "Disable an API key"), el("option", { value: "quarantine-plugin" }, "Quarantine a plugin"))),
        field("Account id", "userId"), field("API key id", "keyId"), field("Plugin id", "pluginId"), field("Plugin version (empty: every version)", "version"),
        field("Workspace id (empty: platform-wide)", "workspaceId"), field("Reason", "reason", { maxlength: 500 }),
      ], (d) => api("POST", base + "/containment", {
        action: d.get("action"), userId: d.get("userId") || null, keyId: d.get("keyId") || null, pluginId: d.get("pluginId") || null,
        version: d.get("version") || null, workspaceId: d.get("workspaceId") || null, reason: d.get("reason") || null,
      }), "Take action"),
      action("Add a note", [field("Note", "text", { rows: 3, required: true, maxlength: 4000 })], (d) => api("POST", base + "/notes", { text: d.get("text") })),
      action("Name affected people and workspaces", [field("Account ids (one per line)", "userIds", { rows: 2 }), field("Workspace ids (one per line)", "workspaceIds", { rows: 2 })],
        (d) => api("POST", base + "/affected", { userIds: lines(d.get("userIds")), workspaceIds: lines(d.get("workspaceIds")) }), "Add"),
      action("Derive affected from the audit chains", [field("From", "from", { type: "datetime-local", required: true }), field("To", "to", { type: "datetime-local", required: true }),
        field("Actor", "actorId"), field("Target", "target"), field("Audited action", "action")],
        (d) => api("POST", base + "/affected/derive", { from: utc(d.get("from")), to: utc(d.get("to")), actorId: d.get("actorId") || null, target: d.get("target") || null, action: d.get("action") || null }), "Derive"),
      action("Personal data affected", [field("Which personal data", "description", { required: true, maxlength: 1000 })],
        (d) => api("POST", base + "/personal-data", { description: d.get("description") }), "Start the 72-hour clock"),
      action("Notify the affected people", [field("What happened", "whatHappened", { rows: 2, required: true }), field("Which data", "whatData", { rows: 2, required: true }),
        field("What we did", "whatWeDid", { rows: 2, required: true }), field("What they should do", "whatYouShouldDo", { rows: 2, required: true })],
        (d) => api("POST", base + "/notify", { whatHappened: d.get("whatHappened"), whatData: d.get("whatData"), whatWeDid: d.get("whatWeDid"), whatYouShouldDo: d.get("whatYouShouldDo") }), "Send notifications"),
      action("Post-incident review", [field("Review (required to close)", "review", { rows: 4, required: true })], (d) => api("PUT", base + "/review", { review: d.get("review") }), "Save review"),
    );
  }
  parts.push(el("p", {}, el("button", {
    type: "button", onclick: async () => {
      const response = await fetch(base + "/audit-export", { method: "POST", headers: { Authorization: "Bearer " + state.token, "Content-Type": "application/json" }, body: "{}" });
      if (!response.ok) { showProblem("The export was refused (" + response.status + ")"); return; }
      const link = el("a", { href: URL.createObjectURL(await response.blob()), download: "incident-" + i.id + "-audit.json" });
      link.click();
      await route();
    },
  }, "Export the audit entries (JSON)")));
  return el("div", {}, parts);
}

const lines = (value) => String(value || "").split(/\s+/).filter(Boolean);
const utc = (local) => new Date(local).toISOString();

async function start() {
  $("sign-in").addEventListener("click", signIn);
  window.addEventListener("hashchange", route);
  state.config = await (await fetch("config.json")).json();
  if (!state.config.authority) {
    showProblem("This Api has no sign-in configured for the console (SecurityConsole:Authority).");
    return;
  }
  const params = new URLSearchParams(location.search);
  if (params.has("code") && await redeem(params)) {
    $("nav").hidden = false;
    await route();
    return;
  }
  if (params.has("error")) showProblem("Identity refused the sign-in: " + (params.get("error_description") || params.get("error")));
  $("sign-in").hidden = false;
  say("Platform administrators sign in with a second factor.");
}

start();
