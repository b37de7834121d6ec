/* openai-proxy web console — the core: window.OPX, the shell, the login screen.
 *
 * Plain ES2020, no build step. Every element is built with OPX.h (or textContent), never by parsing HTML
 * strings or evaluating code (a test greps the console's files for those APIs): text from keys, models and
 * users stays text.
 *
 * ─── The OPX interface (what page-*.js files use) ──────────────────────────────────────────────────────
 *
 * Pages and routing
 *   OPX.page(name, {title, render})         Registers a page. title: an i18n key. render(root, params) fills
 *                                           root (a new, empty <div> in #page), may be async, and may return (or resolve
 *                                           to) a cleanup function, called when leaving the page or before a
 *                                           re-render (stop timers, abort streams; charts made with OPX.chart
 *                                           inside root are destroyed by the router). params: URLSearchParams
 *                                           of the hash's query (#/chat?id=12 → params.get("id") === "12").
 *   OPX.go(name, params?)                   Navigates to #/name (params: object or URLSearchParams).
 *   OPX.reload()                            Renders the current page again (same hash).
 *   OPX.current()                           → {name, params} of the page shown.
 *   Readiness: on navigation start body[data-page=name] is set and body[data-ready] removed; when render's
 *   promise resolves body[data-ready=name] is set. A render that throws shows the error in the page and
 *   still sets data-ready (plus body[data-error=name]).
 *
 * Talking to the API
 *   OPX.api(method, path, body?)            → Promise of the parsed JSON, or null for 204. Sends the session's
 *                                           X-CSRF-Token on POST/PUT/PATCH/DELETE. 401 → the login screen is
 *                                           shown and the promise rejects with err.status 401. Other errors
 *                                           reject with an Error: .message (the API's error.message), .status,
 *                                           .code, .param. A network failure rejects with status 0.
 *   OPX.stream(path, body, {onEvent, signal, onResponse}) → Promise<void>. POSTs body as JSON and reads
 *                                           the text/event-stream answer: onResponse(response) once with the
 *                                           fetch Response (status ok; read headers there), then
 *                                           onEvent(parsed JSON) per data: event, until [DONE] or the end. Errors as OPX.api; an abort through
 *                                           signal rejects with err.name === "AbortError".
 *   OPX.qs(object)                          → "?a=1&b=2" (null/undefined/"" values left out), or "".
 *
 * Building the page
 *   OPX.h(tag, attrs?, ...children)         → HTMLElement. attrs (null allowed):
 *                                             class: string or array (falsy entries dropped)
 *                                             on: {click: fn, input: fn, …}
 *                                             style: {property: value} (set through CSSOM; CSP allows it)
 *                                             dataset: {name: value}; or "data-name": value
 *                                             value, checked, disabled, hidden, selected, readOnly, required,
 *                                             multiple: set as properties (value after the children, so a
 *                                             <select>'s value picks among its options)
 *                                             anything else: setAttribute (true → "", false/null → left out);
 *                                             "on…" strings and "javascript:" URLs are refused.
 *                                           children: nodes, strings/numbers (→ text nodes), arrays (flattened),
 *                                           null/undefined/false (skipped).
 *   OPX.clear(element)                      Removes every child; returns element.
 *   OPX.table(columns, rows, {empty, rowAttrs, small}?) → a .table-responsive <div> holding a <table>.
 *                                           columns: [{label: text, value: row => node|string|number,
 *                                           class?: "text-end" etc., headClass?}]; rowAttrs(row) → attrs of
 *                                           the <tr>; empty: text shown when rows is empty.
 *   OPX.pager({offset, limit, count, total?, onChange}) → a <nav> with previous/next and "1–50 of 1,234".
 *                                           count: rows on this page; total: all rows, or null when unknown
 *                                           (then "next" is enabled while count === limit).
 *                                           onChange(newOffset) is called on a click.
 *   OPX.chart(canvas, config)               → a Chart.js 3.9 instance with the theme's colours, no animation,
 *                                           responsive in its parent (give the parent a height, e.g. class
 *                                           "opx-chart-box"). Sets canvas.dataset.drawn = "1" once drawn.
 *                                           Destroyed by the router when the page is left. Returns null and
 *                                           shows a note when Chart.js is missing.
 *   OPX.chart.colors                        The series palette (array of CSS colours).
 *   OPX.spinner()                           → a small "Loading…" element.
 *   OPX.errorBox(error)                     → an alert element showing error.message.
 *   OPX.formErrors(controls, feedback, general) → {clear(), show(error)} for a form's validation messages.
 *                                           controls / feedback: field → input / its .invalid-feedback
 *                                           element; general: an alert for anything else. show() marks the
 *                                           field a 400 names (error.param, or "field[…]" of it; else the
 *                                           message's first word) and puts the message under it.
 *   OPX.stateBadge(status)                  → a coloured badge for a key state (active, cooling, …).
 *
 * Dialogs and notices
 *   OPX.toast(message, kind?)               kind: "success" | "danger" | "info" (default).
 *   OPX.confirm(message, {okLabel, danger}?) → Promise<boolean>, a Bootstrap modal (never window.confirm).
 *                                           okLabel defaults to t("common.confirm"); danger (default true)
 *                                           makes the button red.
 *   OPX.modal({title, body, okLabel?, cancelLabel?, onOk?, size?}) → Promise.
 *                                           body(container) fills the dialog's body. OK (#modal-ok) calls
 *                                           onOk(container) (may be async): its value resolves the promise
 *                                           and closes the dialog; if it throws, err.message is shown in
 *                                           #modal-error and the dialog stays. Without onOk, OK resolves
 *                                           true. Cancel/close resolves null. okLabel: null → no OK button.
 *                                           size: "lg" | "sm". The dialog (.modal) gets data-shown="1" when
 *                                           its opening animation has ended; OK or Cancel before that closes
 *                                           it once open (Bootstrap itself would ignore the close).
 *
 * Text and formats
 *   OPX.t(key, vars?)                       → text in the current language; "{name}" replaced from vars.
 *                                           Falls back to English, then to the key itself.
 *   OPX.messages({en: {...}, zh: {...}})    Registers strings; keys prefixed by the page, e.g. "chat.send".
 *   OPX.lang()                              → "en" | "zh". Elements with data-i18n="key" get the text;
 *                                           data-i18n-placeholder / data-i18n-title / data-i18n-aria-label
 *                                           fill those attributes. A language switch re-renders the page.
 *   OPX.fmt.number(n, digits?)              "12,345" (null → "—")
 *   OPX.fmt.compact(n)                      "12.3K" / "1.2万"
 *   OPX.fmt.percent(fraction, digits=1)     0.975 → "97.5%"
 *   OPX.fmt.ms(milliseconds)                "850 ms", "1.24 s"
 *   OPX.fmt.bytes(n)                        "1.5 KiB"
 *   OPX.fmt.time(isoOrMs)                   local date and time, "—" for null
 *   OPX.fmt.relative(isoOrMs)               "3 minutes ago" / "in 5 minutes" (in the current language)
 *   OPX.theme()                             → "light" | "dark".
 *
 * Shell ids: #lang-toggle, #theme-toggle, #logout, nav links a[data-nav="<page>"], page root #page.
 * Login ids: #login-token, #login-submit, #login-error.
 */
"use strict";

(function () {
  const PAGES = ["dashboard", "keys", "objects", "models", "chat", "stats", "tokens", "settings", "audit"];
  const VENDOR_PACKAGES = { bootstrap: "libjs-bootstrap5", chart: "libjs-chart.js" };

  const registry = new Map();
  const dictionaries = { en: {}, zh: {} };
  const state = {
    csrf: null,
    lang: "en",
    theme: "light",
    shown: null, // {name, params, cleanup, root, token}
    navigation: 0, // increases with every navigation, so a slow render of a page left behind is ignored
    started: false,
  };

  // ─── DOM ──────────────────────────────────────────────────────────────────────────────────────────

  const PROPERTIES = new Set(["checked", "disabled", "hidden", "selected", "readOnly", "required", "multiple"]);

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    let value;
    for (const [name, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false && !PROPERTIES.has(name)) continue;
      if (name === "class") {
        el.className = Array.isArray(v) ? v.filter(Boolean).join(" ") : v;
      } else if (name === "on") {
        for (const [event, fn] of Object.entries(v)) el.addEventListener(event, fn);
      } else if (name === "style") {
        for (const [prop, val] of Object.entries(v)) el.style[prop] = val;
      } else if (name === "dataset") {
        for (const [key, val] of Object.entries(v)) if (val !== undefined && val !== null) el.dataset[key] = val;
      } else if (name === "value") {
        value = v;
      } else if (PROPERTIES.has(name)) {
        el[name] = Boolean(v);
      } else if (/^on/i.test(name)) {
        throw new Error("OPX.h: use on: {event: fn}, not " + name);
      } else if ((name === "href" || name === "src") && /^\s*javascript:/i.test(String(v))) {
        throw new Error("OPX.h: javascript: URLs are refused");
      } else {
        el.setAttribute(name, v === true ? "" : String(v));
      }
    }
    append(el, children);
    if (value !== undefined) el.value = value;
    return el;
  }

  function append(el, children) {
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      if (Array.isArray(child)) append(el, child);
      else if (child instanceof Node) el.appendChild(child);
      else el.appendChild(document.createTextNode(String(child)));
    }
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  }

  // ─── Text ─────────────────────────────────────────────────────────────────────────────────────────

  function messages(table) {
    for (const lang of Object.keys(dictionaries)) Object.assign(dictionaries[lang], table[lang] || {});
  }

  function t(key, vars) {
    let text = dictionaries[state.lang][key];
    if (text === undefined) text = dictionaries.en[key];
    if (text === undefined) text = key;
    if (vars) text = text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
    return text;
  }

  /** Fills every data-i18n* element below root with the current language's text. */
  function translateStatic(root) {
    for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    for (const attr of ["placeholder", "title", "aria-label"]) {
      const data = "i18n" + attr.replace(/(^|-)(\w)/g, (m, d, c) => c.toUpperCase());
      for (const el of root.querySelectorAll("[data-i18n-" + attr + "]")) el.setAttribute(attr, t(el.dataset[data]));
    }
  }

  function initialLanguage() {
    const saved = localStorage.getItem("opx.lang");
    if (saved === "en" || saved === "zh") return saved;
    return /^zh/i.test(navigator.language || "") ? "zh" : "en";
  }

  function setLanguage(lang) {
    state.lang = lang;
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.title = t("app.name");
    translateStatic(document.body);
  }

  // ─── Theme ────────────────────────────────────────────────────────────────────────────────────────

  function initialTheme() {
    const saved = localStorage.getItem("opx.theme");
    if (saved === "light" || saved === "dark") return saved;
    return window.matchMedia && matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function setTheme(theme) {
    state.theme = theme;
    document.documentElement.classList.toggle("opx-dark", theme === "dark");
    if (window.Chart) {
      const dark = theme === "dark";
      Chart.defaults.color = dark ? "#c3ccd5" : "#4a5560";
      Chart.defaults.borderColor = dark ? "rgba(255,255,255,0.12)" : "rgba(0,0,0,0.1)";
    }
  }

  // ─── Formats ──────────────────────────────────────────────────────────────────────────────────────

  const locale = () => (state.lang === "zh" ? "zh-CN" : "en-US");
  const EMPTY = "—";
  const missing = (v) => v === null || v === undefined || (typeof v === "number" && !isFinite(v));
  const toDate = (v) => (typeof v === "number" ? new Date(v) : new Date(String(v)));

  const fmt = {
    number(n, digits) {
      if (missing(n)) return EMPTY;
      const options = digits === undefined ? { maximumFractionDigits: 2 } : { minimumFractionDigits: digits, maximumFractionDigits: digits };
      return new Intl.NumberFormat(locale(), options).format(n);
    },
    compact(n) {
      if (missing(n)) return EMPTY;
      return new Intl.NumberFormat(locale(), { notation: "compact", maximumFractionDigits: 1 }).format(n);
    },
    percent(fraction, digits = 1) {
      if (missing(fraction)) return EMPTY;
      return new Intl.NumberFormat(locale(), { style: "percent", minimumFractionDigits: digits, maximumFractionDigits: digits }).format(fraction);
    },
    ms(milliseconds) {
      if (missing(milliseconds)) return EMPTY;
      if (milliseconds < 1000) return fmt.number(Math.round(milliseconds)) + " ms";
      return fmt.number(milliseconds / 1000, milliseconds < 10000 ? 2 : 1) + " s";
    },
    bytes(n) {
      if (missing(n)) return EMPTY;
      const units = ["B", "KiB", "MiB", "GiB", "TiB"];
      let i = 0;
      while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
      return fmt.number(n, i === 0 ? 0 : 1) + " " + units[i];
    },
    time(v) {
      if (missing(v) || v === "") return EMPTY;
      const d = toDate(v);
      if (isNaN(d)) return EMPTY;
      return d.toLocaleString(locale(), { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
    },
    relative(v) {
      if (missing(v) || v === "") return EMPTY;
      const d = toDate(v);
      if (isNaN(d)) return EMPTY;
      const seconds = (d.getTime() - Date.now()) / 1000;
      const steps = [[60, "second"], [3600, "minute"], [86400, "hour"], [86400 * 30, "day"], [86400 * 365, "month"], [Infinity, "year"]];
      const sizes = { second: 1, minute: 60, hour: 3600, day: 86400, month: 86400 * 30, year: 86400 * 365 };
      const [, unit] = steps.find(([limit]) => Math.abs(seconds) < limit);
      return new Intl.RelativeTimeFormat(locale(), { numeric: "auto" }).format(Math.round(seconds / sizes[unit]), unit);
    },
  };

  // ─── API ──────────────────────────────────────────────────────────────────────────────────────────

  const CHANGING = new Set(["POST", "PUT", "PATCH", "DELETE"]);

  function qs(params) {
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined && v !== "") search.set(k, v);
    const text = search.toString();
    return text ? "?" + text : "";
  }

  function requestInit(method, body, accept) {
    const headers = { Accept: accept };
    if (CHANGING.has(method) && state.csrf) headers["X-CSRF-Token"] = state.csrf;
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return init;
  }

  /** Turns a failed answer into the Error OPX.api promises: the API's message, status, code and param. */
  async function failure(response) {
    let detail = {};
    try { detail = (await response.json()).error || {}; } catch (ignored) { /* not JSON */ }
    const err = new Error(detail.message || response.status + " " + response.statusText);
    err.status = response.status;
    err.code = detail.code || null;
    err.param = detail.param || null;
    if (response.status === 401) {
      sessionGone();
      err.message = t("login.expired");
    } else if (err.code === "database_unavailable") {
      err.message = t("common.database_unavailable");
    }
    return err;
  }

  async function send(path, init) {
    try {
      return await fetch(path, init);
    } catch (cause) {
      if (cause.name === "AbortError") throw cause;
      const err = new Error(t("common.network_error"));
      err.status = 0;
      err.code = "network_error";
      throw err;
    }
  }

  async function api(method, path, body) {
    method = method.toUpperCase();
    const response = await send(path, requestInit(method, body, "application/json"));
    if (!response.ok) throw await failure(response);
    if (response.status === 204) return null;
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }

  async function stream(path, body, { onEvent, signal, onResponse } = {}) {
    const init = requestInit("POST", body, "text/event-stream");
    init.signal = signal;
    const response = await send(path, init);
    if (!response.ok) throw await failure(response);
    if (onResponse) onResponse(response);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let boundary;
      while ((boundary = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary + 2);
        const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
        if (!data) continue;
        if (data.trim() === "[DONE]") { reader.cancel().catch(() => {}); return; }
        onEvent(JSON.parse(data));
      }
    }
  }

  // ─── Notices and dialogs ──────────────────────────────────────────────────────────────────────────

  function toast(message, kind = "info") {
    const colour = { success: "text-bg-success", danger: "text-bg-danger", info: "text-bg-primary" }[kind] || "text-bg-primary";
    const el = h("div", { class: ["toast align-items-center border-0", colour], role: kind === "danger" ? "alert" : "status", "aria-live": "polite", "aria-atomic": "true", dataset: { kind } },
      h("div", { class: "d-flex" },
        h("div", { class: "toast-body" }, message),
        h("button", { type: "button", class: "btn-close btn-close-white me-2 m-auto", "data-bs-dismiss": "toast", "aria-label": t("common.close") })));
    document.getElementById("toasts").appendChild(el);
    el.addEventListener("hidden.bs.toast", () => el.remove());
    new bootstrap.Toast(el, { delay: kind === "danger" ? 8000 : 4000 }).show();
  }

  function modal({ title, body, okLabel, cancelLabel, onOk, size, danger } = {}) {
    return new Promise((resolve) => {
      let result = null;
      const error = h("div", { id: "modal-error", class: "alert alert-danger mt-3 mb-0", role: "alert", hidden: true });
      const content = h("div", { class: "modal-body" });
      const ok = okLabel === null ? null : h("button", { type: "submit", id: "modal-ok", class: ["btn", danger ? "btn-danger" : "btn-primary"] }, okLabel || t("common.ok"));
      const form = h("form", { class: "modal-content", novalidate: true },
        h("div", { class: "modal-header" },
          h("h2", { class: "modal-title fs-5" }, title || ""),
          h("button", { type: "button", class: "btn-close", "aria-label": t("common.close"), on: { click: () => close() } })),
        content,
        h("div", { class: "modal-footer" },
          h("button", { type: "button", id: "modal-cancel", class: "btn btn-outline-secondary", on: { click: () => close() } }, cancelLabel || (ok ? t("common.cancel") : t("common.close"))),
          ok));
      const el = h("div", { class: "modal fade", tabindex: "-1", "aria-modal": "true", role: "dialog" },
        h("div", { class: ["modal-dialog modal-dialog-scrollable", size ? "modal-" + size : null] }, form));
      if (body) body(content);
      content.appendChild(error);
      // Bootstrap ignores hide() while the dialog is still opening: remember it and close once open.
      let opened = false;
      let closeWhenOpen = false;
      const close = () => {
        if (opened) dialog.hide();
        else closeWhenOpen = true;
      };
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        if (!ok || ok.disabled) return;
        ok.disabled = true;
        error.hidden = true;
        try {
          result = onOk ? await onOk(content) : true;
          close();
        } catch (err) {
          error.textContent = err.message;
          error.hidden = false;
        } finally {
          ok.disabled = false;
        }
      });
      el.addEventListener("shown.bs.modal", () => {
        opened = true;
        el.dataset.shown = "1";
        if (closeWhenOpen) return dialog.hide();
        const first = content.querySelector("input, textarea, select") || ok;
        if (first) first.focus();
      });
      el.addEventListener("hidden.bs.modal", () => {
        dialog.dispose();
        el.remove();
        resolve(result);
      });
      document.body.appendChild(el);
      const dialog = new bootstrap.Modal(el);
      dialog.show();
    });
  }

  async function confirmDialog(message, { okLabel, danger = true } = {}) {
    const answer = await modal({ title: t("common.confirm_title"), body: (c) => c.appendChild(h("p", { class: "mb-0" }, message)), okLabel: okLabel || t("common.confirm"), danger });
    return answer === true;
  }

  // ─── Small pieces ─────────────────────────────────────────────────────────────────────────────────

  function spinner() {
    return h("div", { class: "d-flex align-items-center gap-2 opx-muted my-3", role: "status" },
      h("span", { class: "spinner-border spinner-border-sm", "aria-hidden": "true" }), t("common.loading"));
  }

  function errorBox(err) {
    return h("div", { class: "alert alert-danger", role: "alert" }, err && err.message ? err.message : String(err));
  }

  // Forms fill controls and feedback as they build their fields, so both are read at each call.
  function formErrors(controls, feedback, general) {
    const fields = () => Object.keys(controls).filter((field) => feedback[field]);
    function clear() {
      general.classList.add("d-none");
      fields().forEach((field) => {
        controls[field].classList.remove("is-invalid");
        feedback[field].textContent = "";
      });
    }
    function show(error) {
      const param = error.param || (error.message || "").split(" ")[0];
      const field = fields().find((f) => param === f || param.startsWith(f + "["));
      if (error.status === 400 && field) {
        controls[field].classList.add("is-invalid");
        feedback[field].textContent = error.message;
      } else {
        general.textContent = error.message;
        general.classList.remove("d-none");
      }
    }
    return { clear, show };
  }

  function stateBadge(status) {
    return h("span", { class: ["badge opx-state", "opx-state-" + status], dataset: { state: status } }, t("state." + status));
  }

  function table(columns, rows, { empty, rowAttrs, small = true } = {}) {
    const head = h("thead", null, h("tr", null, columns.map((c) => h("th", { scope: "col", class: c.headClass || c.class }, c.label))));
    const body = h("tbody", null, rows.length === 0
      ? h("tr", null, h("td", { colspan: String(columns.length), class: "text-center opx-muted py-4" }, empty || t("common.empty")))
      : rows.map((row) => h("tr", rowAttrs ? rowAttrs(row) : null, columns.map((c) => h("td", { class: c.class }, c.value(row))))));
    return h("div", { class: "table-responsive" },
      h("table", { class: ["table table-hover align-middle mb-0", small ? "table-sm" : null] }, head, body));
  }

  function pager({ offset, limit, count, total = null, onChange }) {
    const first = count === 0 ? 0 : offset + 1;
    const last = offset + count;
    const hasNext = total === null || total === undefined ? count >= limit : last < total;
    const label = total === null || total === undefined
      ? t("common.range", { first: fmt.number(first), last: fmt.number(last) })
      : t("common.range_of", { first: fmt.number(first), last: fmt.number(last), total: fmt.number(total) });
    const button = (text, target, enabled, role) =>
      h("li", { class: ["page-item", enabled ? null : "disabled"] },
        h("button", { type: "button", class: "page-link", disabled: !enabled, dataset: { role }, on: { click: () => onChange(Math.max(0, target)) } }, text));
    return h("nav", { class: "d-flex flex-wrap align-items-center gap-3 mt-2", "aria-label": t("common.pages") },
      h("ul", { class: "pagination pagination-sm mb-0" },
        button(t("common.previous"), offset - limit, offset > 0, "previous"),
        button(t("common.next"), offset + limit, hasNext, "next")),
      h("span", { class: "opx-muted small" }, label));
  }

  // ─── Charts ───────────────────────────────────────────────────────────────────────────────────────

  const PALETTE = ["#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#ec4899", "#84cc16", "#f97316", "#64748b"];
  const liveCharts = new Set();

  /** Marks the canvas once Chart.js has painted it, for tests and screenshots. */
  const drawnMarker = { id: "opxDrawn", afterRender(chart) { chart.canvas.dataset.drawn = "1"; } };

  function chart(canvas, config) {
    if (!window.Chart) {
      canvas.replaceWith(h("p", { class: "opx-muted" }, t("vendor.no_chart")));
      return null;
    }
    const options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options || {});
    options.plugins = Object.assign({ legend: { labels: { boxWidth: 12 } } }, options.plugins || {});
    const instance = new Chart(canvas, Object.assign({}, config, { options, plugins: [drawnMarker].concat(config.plugins || []) }));
    liveCharts.add(instance);
    return instance;
  }
  chart.colors = PALETTE;

  /** Destroys the charts inside root (the page being left), and any whose canvas left the page already
   *  (a render that finished after its page was left). */
  function destroyCharts(root) {
    for (const instance of liveCharts) {
      if (!instance.canvas || !instance.canvas.isConnected || root.contains(instance.canvas)) {
        instance.destroy();
        liveCharts.delete(instance);
      }
    }
  }

  // ─── Router ───────────────────────────────────────────────────────────────────────────────────────

  function page(name, definition) {
    registry.set(name, definition);
  }

  function parseHash() {
    const raw = location.hash.replace(/^#\/?/, "");
    const cut = raw.indexOf("?");
    const name = decodeURIComponent(cut >= 0 ? raw.slice(0, cut) : raw);
    return { name, params: new URLSearchParams(cut >= 0 ? raw.slice(cut + 1) : "") };
  }

  function go(name, params) {
    const query = params ? new URLSearchParams(params).toString() : "";
    const hash = "#/" + name + (query ? "?" + query : "");
    if (location.hash === hash) reload();
    else location.hash = hash;
  }

  function current() {
    return state.shown ? { name: state.shown.name, params: state.shown.params } : parseHash();
  }

  function leave() {
    const shown = state.shown;
    state.shown = null;
    if (!shown) return;
    if (typeof shown.cleanup === "function") {
      try { shown.cleanup(); } catch (err) { console.warn("page cleanup failed", err); }
    }
    destroyCharts(shown.root);
  }

  async function navigate() {
    if (!state.csrf) return; // not logged in: the login screen is up
    let { name, params } = parseHash();
    if (!registry.has(name)) {
      // Unknown or empty hash: the dashboard, without adding a history entry.
      history.replaceState(null, "", "#/dashboard");
      ({ name, params } = parseHash());
      if (!registry.has(name)) return;
    }
    leave();
    const token = ++state.navigation;
    const body = document.body;
    body.dataset.page = name;
    delete body.dataset.ready;
    delete body.dataset.error;
    markNav(name);
    // A fresh root per navigation: a render still awaiting the API after its page was left fills its own,
    // detached root, never the next page's.
    const root = h("div", { class: "opx-page-root", dataset: { root: name } });
    clear(document.getElementById("page")).appendChild(root);
    const definition = registry.get(name);
    document.title = t(definition.title) + " · " + t("app.name");
    const shown = { name, params, root, cleanup: null };
    state.shown = shown;
    try {
      const cleanup = await definition.render(root, params);
      if (token !== state.navigation) {
        // Left while rendering: undo what the render started.
        if (typeof cleanup === "function") cleanup();
        return;
      }
      shown.cleanup = cleanup;
    } catch (err) {
      if (token !== state.navigation) return;
      if (err && err.status === 401) return; // the login screen is up
      console.warn("page " + name + " failed", err);
      root.appendChild(errorBox(err));
      body.dataset.error = name;
    }
    body.dataset.ready = name;
  }

  function reload() {
    navigate();
  }

  function markNav(name) {
    for (const link of document.querySelectorAll("a[data-nav]")) {
      const active = link.dataset.nav === name;
      link.classList.toggle("active", active);
      if (active) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  // ─── Shell and login ──────────────────────────────────────────────────────────────────────────────

  function shell() {
    const app = clear(document.getElementById("app"));
    const links = PAGES.map((name) =>
      h("li", { class: "nav-item" },
        h("a", { class: "nav-link", href: "#/" + name, dataset: { nav: name, i18n: "nav." + name } }, t("nav." + name))));
    const collapse = h("div", { class: "collapse navbar-collapse", id: "opx-nav" },
      h("ul", { class: "navbar-nav me-auto mb-2 mb-lg-0" }, links),
      h("div", { class: "d-flex flex-wrap gap-2 pb-2 pb-lg-0" },
        h("button", { type: "button", id: "lang-toggle", class: "btn btn-sm btn-outline-light", on: { click: toggleLanguage } }, t("shell.other_language")),
        h("button", { type: "button", id: "theme-toggle", class: "btn btn-sm btn-outline-light", on: { click: toggleTheme } }, themeLabel()),
        h("button", { type: "button", id: "logout", class: "btn btn-sm btn-outline-light", dataset: { i18n: "shell.logout" }, on: { click: logout } }, t("shell.logout"))));
    const nav = h("nav", { class: "navbar navbar-expand-lg navbar-dark opx-navbar sticky-top" },
      h("div", { class: "container-fluid" },
        h("a", { class: "navbar-brand", href: "#/dashboard", dataset: { i18n: "app.name" } }, t("app.name")),
        h("button", { type: "button", class: "navbar-toggler", "data-bs-toggle": "collapse", "data-bs-target": "#opx-nav", "aria-controls": "opx-nav", "aria-expanded": "false", dataset: { i18nAriaLabel: "shell.menu" }, "aria-label": t("shell.menu") },
          h("span", { class: "navbar-toggler-icon" })),
        collapse));
    // On a phone the menu covers the page: close it once a link is chosen.
    collapse.addEventListener("click", (event) => {
      if (event.target.closest("a[data-nav]") && collapse.classList.contains("show")) bootstrap.Collapse.getOrCreateInstance(collapse).hide();
    });
    app.append(nav, h("main", { class: "container-xl opx-main", id: "page" }));
  }

  function themeLabel() {
    return state.theme === "dark" ? t("shell.theme_light") : t("shell.theme_dark");
  }

  function toggleLanguage() {
    const lang = state.lang === "en" ? "zh" : "en";
    localStorage.setItem("opx.lang", lang);
    setLanguage(lang);
    refreshShellLabels();
    if (state.csrf) reload();
    else showLogin();
  }

  function toggleTheme() {
    const theme = state.theme === "dark" ? "light" : "dark";
    localStorage.setItem("opx.theme", theme);
    setTheme(theme);
    refreshShellLabels();
    // Charts take their colours when built.
    if (state.csrf && liveCharts.size > 0) reload();
  }

  function refreshShellLabels() {
    const lang = document.getElementById("lang-toggle");
    if (lang) lang.textContent = t("shell.other_language");
    const theme = document.getElementById("theme-toggle");
    if (theme) theme.textContent = themeLabel();
  }

  function showLogin(message) {
    leave();
    state.csrf = null;
    delete document.body.dataset.ready;
    document.body.dataset.page = "login";
    const app = clear(document.getElementById("app"));
    const token = h("input", { type: "password", id: "login-token", class: "form-control", autocomplete: "current-password", required: true, placeholder: t("login.token_placeholder") });
    const error = h("div", { id: "login-error", class: "alert alert-danger py-2", role: "alert", hidden: !message }, message || "");
    const submit = h("button", { type: "submit", id: "login-submit", class: "btn btn-primary w-100" }, t("login.submit"));
    const form = h("form", { class: "card shadow-sm", on: { submit: (event) => { event.preventDefault(); login(token, submit, error); } } },
      h("div", { class: "card-body p-4" },
        h("h1", { class: "h4 mb-1" }, t("app.name")),
        h("p", { class: "opx-muted mb-4" }, t("login.intro")),
        h("label", { class: "form-label", for: "login-token" }, t("login.token")),
        token,
        h("div", { class: "form-text mb-3" }, t("login.hint")),
        error,
        submit));
    const tools = h("div", { class: "d-flex justify-content-center gap-2 mt-3" },
      h("button", { type: "button", id: "lang-toggle", class: "btn btn-sm btn-outline-secondary", on: { click: toggleLanguage } }, t("shell.other_language")),
      h("button", { type: "button", id: "theme-toggle", class: "btn btn-sm btn-outline-secondary", on: { click: toggleTheme } }, themeLabel()));
    app.appendChild(h("div", { class: "opx-login" }, form, tools));
    document.body.dataset.ready = "login";
    token.focus();
  }

  async function login(input, submit, error) {
    error.hidden = true;
    if (!input.value.trim()) {
      error.textContent = t("login.empty");
      error.hidden = false;
      return;
    }
    submit.disabled = true;
    try {
      const response = await send("/api/auth/login", requestInit("POST", { admin_token: input.value.trim() }, "application/json"));
      if (!response.ok) {
        const err = await failure(response).catch(() => new Error(""));
        error.textContent = response.status === 401 ? t("login.wrong") : err.message;
        error.hidden = false;
        input.select();
        return;
      }
      const session = await response.json();
      startSession(session);
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  }

  function startSession(session) {
    state.csrf = session.csrf_token;
    shell();
    navigate();
  }

  /** A 401 from the API: the session ended (expired, logged out elsewhere, or the token changed). */
  function sessionGone() {
    if (state.csrf) showLogin(t("login.expired"));
  }

  async function logout() {
    try { await api("POST", "/api/auth/logout"); } catch (ignored) { /* gone already */ }
    showLogin();
  }

  // ─── Start ────────────────────────────────────────────────────────────────────────────────────────

  /** The Debian packages whose files did not load: named by the server, or found absent here. */
  function missingVendors() {
    const named = (document.documentElement.dataset.vendorMissing || "").split(/\s+/).filter(Boolean);
    const absent = new Set(named);
    if (!window.bootstrap) absent.add(VENDOR_PACKAGES.bootstrap);
    if (!window.Chart) absent.add(VENDOR_PACKAGES.chart);
    return [...absent];
  }

  /** Without Bootstrap or Chart.js the console cannot work; say plainly what to install. */
  function showVendorNotice(packages) {
    const notice = document.getElementById("vendor-notice");
    clear(notice).append(
      h("strong", null, t("vendor.title")), h("br"),
      t("vendor.body", { packages: packages.join(", ") }), h("br"),
      h("code", null, "apt-get install " + packages.join(" ")), h("br"),
      t("vendor.dir"));
    notice.hidden = false;
    document.body.dataset.page = "vendor-missing";
    document.body.dataset.ready = "vendor-missing";
  }

  async function start() {
    state.started = true;
    setTheme(initialTheme());
    setLanguage(initialLanguage());
    const absent = missingVendors();
    if (absent.length > 0) return showVendorNotice(absent);
    window.addEventListener("hashchange", navigate);
    // The server marks the page when its cookie names a live session. Only then ask for the session (and
    // its CSRF token): asking without one answers 401, which the browser logs as an error.
    if (document.documentElement.dataset.session !== "1") return showLogin();
    try {
      const session = await api("GET", "/api/auth/session");
      if (session && session.method === "session" && session.csrf_token) startSession(session);
      else showLogin();
    } catch (err) {
      if (err.status !== 401) showLogin(err.message);
      // 401: failure() already showed the login screen.
      else if (!document.getElementById("login-token")) showLogin();
    }
  }

  // ─── Core strings ─────────────────────────────────────────────────────────────────────────────────

  messages({
    en: {
      "app.name": "openai-proxy",
      "nav.dashboard": "Dashboard", "nav.keys": "Keys", "nav.models": "Models", "nav.chat": "Chat",
      "nav.stats": "Statistics", "nav.tokens": "Client tokens", "nav.settings": "Settings", "nav.audit": "Audit log",
      "shell.other_language": "中文", "shell.theme_dark": "Dark", "shell.theme_light": "Light",
      "shell.logout": "Log out", "shell.menu": "Menu",
      "login.intro": "Sign in to manage the key pool.", "login.token": "Admin token",
      "login.token_placeholder": "The admin token", "login.submit": "Sign in",
      "login.hint": "Set by OPENAI_PROXY_ADMIN_TOKEN, or generated into DATA_DIR/admin.token.",
      "login.wrong": "Wrong admin token.", "login.empty": "Enter the admin token.",
      "login.expired": "Your session has ended. Please sign in again.",
      "vendor.title": "The console cannot start: Bootstrap or Chart.js is missing.",
      "vendor.body": "Install the Debian package(s) {packages} on the server running openai-proxy:",
      "vendor.dir": "Or point OPENAI_PROXY_CONSOLE_VENDOR_DIR at the directory that holds bootstrap5/ and chart.js/, then reload this page.",
      "vendor.no_chart": "Chart.js is missing: install libjs-chart.js to see charts.",
      "common.ok": "OK", "common.cancel": "Cancel", "common.close": "Close", "common.confirm": "Confirm",
      "common.confirm_title": "Please confirm", "common.loading": "Loading…", "common.empty": "Nothing here yet.",
      "common.previous": "Previous", "common.next": "Next", "common.pages": "Pages",
      "common.range": "{first}–{last}", "common.range_of": "{first}–{last} of {total}",
      "common.network_error": "The server cannot be reached.",
      "common.database_unavailable": "The database (PostgreSQL) cannot be reached. Try again once it is back.", "common.save": "Save", "common.add": "Add",
      "common.edit": "Edit", "common.delete": "Delete", "common.refresh": "Refresh", "common.search": "Search",
      "common.all": "All", "common.yes": "Yes", "common.no": "No", "common.saved": "Saved.",
      "common.deleted": "Deleted.", "common.actions": "Actions", "common.name": "Name", "common.never": "never",
      "state.active": "active", "state.cooling": "cooling", "state.quota_exhausted": "quota exhausted",
      "state.invalid": "invalid", "state.disabled": "disabled",
    },
    zh: {
      "app.name": "openai-proxy",
      "nav.dashboard": "仪表盘", "nav.keys": "密钥", "nav.models": "模型", "nav.chat": "对话",
      "nav.stats": "统计", "nav.tokens": "客户端令牌", "nav.settings": "设置", "nav.audit": "审计日志",
      "shell.other_language": "English", "shell.theme_dark": "深色", "shell.theme_light": "浅色",
      "shell.logout": "退出登录", "shell.menu": "菜单",
      "login.intro": "登录以管理密钥池。", "login.token": "管理令牌",
      "login.token_placeholder": "请输入管理令牌", "login.submit": "登录",
      "login.hint": "由 OPENAI_PROXY_ADMIN_TOKEN 设置，或自动生成在 DATA_DIR/admin.token 中。",
      "login.wrong": "管理令牌不正确。", "login.empty": "请输入管理令牌。",
      "login.expired": "会话已结束，请重新登录。",
      "vendor.title": "控制台无法启动：缺少 Bootstrap 或 Chart.js。",
      "vendor.body": "请在运行 openai-proxy 的服务器上安装 Debian 软件包 {packages}：",
      "vendor.dir": "或者将 OPENAI_PROXY_CONSOLE_VENDOR_DIR 指向包含 bootstrap5/ 和 chart.js/ 的目录，然后刷新本页。",
      "vendor.no_chart": "缺少 Chart.js：安装 libjs-chart.js 后即可查看图表。",
      "common.ok": "确定", "common.cancel": "取消", "common.close": "关闭", "common.confirm": "确认",
      "common.confirm_title": "请确认", "common.loading": "加载中…", "common.empty": "暂无内容。",
      "common.previous": "上一页", "common.next": "下一页", "common.pages": "分页",
      "common.range": "第 {first}–{last} 条", "common.range_of": "第 {first}–{last} 条，共 {total} 条",
      "common.network_error": "无法连接服务器。",
      "common.database_unavailable": "无法连接数据库（PostgreSQL）。请在其恢复后重试。", "common.save": "保存", "common.add": "添加",
      "common.edit": "编辑", "common.delete": "删除", "common.refresh": "刷新", "common.search": "搜索",
      "common.all": "全部", "common.yes": "是", "common.no": "否", "common.saved": "已保存。",
      "common.deleted": "已删除。", "common.actions": "操作", "common.name": "名称", "common.never": "从未",
      "state.active": "可用", "state.cooling": "冷却中", "state.quota_exhausted": "额度用尽",
      "state.invalid": "无效", "state.disabled": "已停用",
    },
  });

  window.OPX = {
    page, go, reload, current, api, stream, qs, h, clear, t, messages, table, pager, chart, spinner, errorBox,
    formErrors, stateBadge, toast, modal, confirm: confirmDialog, fmt,
    lang: () => state.lang,
    theme: () => state.theme,
  };

  // app.js and the page files are deferred, so they run in order before DOMContentLoaded: by then every
  // page has registered.
  document.addEventListener("DOMContentLoaded", start);
})();
