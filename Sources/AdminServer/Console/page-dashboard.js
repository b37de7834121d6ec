/* Dashboard: the pool at a glance. Cards (keys by state, requests and success rate today, tokens today,
 * p50/p95 latency, requests refused before a token was known today), the last 24 hours of requests and tokens, the top models and keys; refreshes itself
 * every 10 s while shown.
 *
 * Only the stats endpoints are read (GET /api/stats/overview, /hourly, /models, /keys, /refused), which
 * answer from hourly or per-minute aggregates; the overview's latency percentiles come from at most 10,000 of today's latest
 * request-log rows: the page stays quick however long the log is. */
"use strict";

(function () {
  const { h, t, fmt } = OPX;
  const REFRESH_MS = 10000;
  const STATES = ["active", "cooling", "quota_exhausted", "invalid", "disabled"];

  OPX.messages({
    en: {
      "dashboard.title": "Dashboard",
      "dashboard.updated": "Updated {time} · refreshes every 10 s",
      "dashboard.keys": "Upstream keys", "dashboard.keys_none": "No keys yet — add one on the Keys page.",
      "dashboard.requests_today": "Requests today", "dashboard.failures": "{count} failed",
      "dashboard.success_today": "Success rate today", "dashboard.last_hour": "{count} in the last hour",
      "dashboard.tokens_today": "Tokens today", "dashboard.tokens_split": "{prompt} prompt · {completion} completion",
      "dashboard.latency": "Latency p50 / p95", "dashboard.latency_sample": "last {count} requests today · avg {avg}",
      "dashboard.latency_none": "no requests today",
      "dashboard.chart_title": "Last 24 hours", "dashboard.chart_requests": "Requests",
      "dashboard.chart_failures": "Failed", "dashboard.chart_tokens": "Tokens",
      "dashboard.top_models": "Top models", "dashboard.top_keys": "Top keys", "dashboard.all_time": "all time",
      "dashboard.col_model": "Model", "dashboard.col_key": "Key", "dashboard.col_requests": "Requests",
      "dashboard.col_success": "Success", "dashboard.col_tokens": "Tokens", "dashboard.col_cache_hit": "Cache hit rate", "dashboard.col_state": "State",
      "dashboard.no_usage": "No requests yet.",
      "dashboard.refused_today": "Refused before auth today",
      "dashboard.refused_split": "no token {missing} · wrong token {invalid} · unknown path {unknown}",
    },
    zh: {
      "dashboard.title": "仪表盘",
      "dashboard.updated": "更新于 {time} · 每 10 秒自动刷新",
      "dashboard.keys": "上游密钥", "dashboard.keys_none": "还没有密钥——请在“密钥”页面添加。",
      "dashboard.requests_today": "今日请求数", "dashboard.failures": "失败 {count} 次",
      "dashboard.success_today": "今日成功率", "dashboard.last_hour": "最近一小时 {count} 次",
      "dashboard.tokens_today": "今日令牌用量", "dashboard.tokens_split": "提示 {prompt} · 补全 {completion}",
      "dashboard.latency": "延迟 p50 / p95", "dashboard.latency_sample": "今日最近 {count} 次请求 · 平均 {avg}",
      "dashboard.latency_none": "今日暂无请求",
      "dashboard.chart_title": "最近 24 小时", "dashboard.chart_requests": "请求数",
      "dashboard.chart_failures": "失败数", "dashboard.chart_tokens": "令牌数",
      "dashboard.top_models": "热门模型", "dashboard.top_keys": "常用密钥", "dashboard.all_time": "全部时间",
      "dashboard.col_model": "模型", "dashboard.col_key": "密钥", "dashboard.col_requests": "请求数",
      "dashboard.col_success": "成功率", "dashboard.col_tokens": "令牌数", "dashboard.col_cache_hit": "缓存命中率", "dashboard.col_state": "状态",
      "dashboard.no_usage": "暂无请求。",
      "dashboard.refused_today": "今日认证前拒绝",
      "dashboard.refused_split": "缺少令牌 {missing} · 令牌错误 {invalid} · 未知路径 {unknown}",
    },
  });

  const successRate = (requests, successes) => (requests > 0 ? successes / requests : null);
  const tokensOf = (totals) => (totals.prompt_tokens || 0) + (totals.completion_tokens || 0);

  function card(id, label) {
    const value = h("div", { class: "opx-stat-value", dataset: { role: "value" } }, "…");
    const sub = h("div", { class: "opx-stat-sub", dataset: { role: "sub" } });
    const el = h("div", { class: "col" },
      h("div", { class: "card h-100 opx-stat", id },
        h("div", { class: "card-body" }, h("div", { class: "opx-stat-label small mb-1" }, label), value, sub)));
    return { el, set(v, ...s) { value.textContent = v; OPX.clear(sub).append(...s); } };
  }

  function fillCards(cards, overview) {
    const keys = overview.keys || {};
    const totalKeys = STATES.reduce((n, s) => n + (keys[s] || 0), 0);
    cards.keys.set(fmt.number(totalKeys), totalKeys === 0 ? t("dashboard.keys_none") :
      h("span", { class: "d-flex flex-wrap gap-1 mt-1" },
        STATES.filter((s) => keys[s] > 0).map((s) => h("span", { class: ["badge opx-state", "opx-state-" + s], dataset: { state: s, count: keys[s] } }, t("state." + s) + " " + fmt.number(keys[s])))));
    const today = overview.today;
    cards.requests.set(fmt.number(today.requests), t("dashboard.failures", { count: fmt.number(today.failures) }));
    cards.success.set(fmt.percent(successRate(today.requests, today.successes)), t("dashboard.last_hour", { count: fmt.number(overview.last_hour.requests) }));
    cards.tokens.set(fmt.compact(tokensOf(today)), t("dashboard.tokens_split", { prompt: fmt.compact(today.prompt_tokens), completion: fmt.compact(today.completion_tokens) }));
    const latency = overview.latency_today;
    if (!latency || latency.samples === 0) {
      cards.latency.set("—", t("dashboard.latency_none"));
    } else {
      cards.latency.set(fmt.ms(latency.p50_ms) + " / " + fmt.ms(latency.p95_ms),
        t("dashboard.latency_sample", { count: fmt.number(latency.samples), avg: fmt.ms(today.avg_latency_ms) }));
    }
  }

  function fillRefused(card, refused) {
    const by = refused.by_reason || {};
    card.set(fmt.number(refused.total), h("span", { dataset: { role: "refused-split" } }, t("dashboard.refused_split", {
      missing: fmt.number(by.missing_token || 0), invalid: fmt.number(by.invalid_token || 0), unknown: fmt.number(by.unknown_path || 0),
    })));
  }

  /** 24 hourly slots ending with the current hour; hours without traffic count zero. */
  function hourlySeries(hourly) {
    const byHour = new Map(hourly.data.map((row) => [Math.floor(Date.parse(row.hour) / 3600000), row.totals]));
    const now = Math.floor(Date.now() / 3600000);
    const slots = [];
    for (let hour = now - 23; hour <= now; hour++) {
      const totals = byHour.get(hour) || { requests: 0, failures: 0, prompt_tokens: 0, completion_tokens: 0 };
      // "14:00": short, the same in both languages, and narrow enough for a phone's axis.
      const label = String(new Date(hour * 3600000).getHours()).padStart(2, "0") + ":00";
      slots.push({ label, requests: totals.requests, failures: totals.failures, tokens: tokensOf(totals) });
    }
    return slots;
  }

  function chartConfig(slots) {
    const [blue, amber, , red] = OPX.chart.colors;
    return {
      type: "bar",
      data: {
        labels: slots.map((s) => s.label),
        datasets: [
          { label: t("dashboard.chart_requests"), data: slots.map((s) => s.requests), backgroundColor: blue, yAxisID: "requests", stack: "r" },
          { label: t("dashboard.chart_failures"), data: slots.map((s) => s.failures), backgroundColor: red, yAxisID: "requests", stack: "f" },
          { label: t("dashboard.chart_tokens"), data: slots.map((s) => s.tokens), type: "line", borderColor: amber, backgroundColor: amber, yAxisID: "tokens", tension: 0.25, pointRadius: 0, borderWidth: 2 },
        ],
      },
      options: {
        interaction: { mode: "index", intersect: false },
        scales: {
          requests: { position: "left", beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: t("dashboard.chart_requests") } },
          tokens: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, title: { display: true, text: t("dashboard.chart_tokens") } },
          x: { ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: window.innerWidth < 576 ? 6 : 12 } },
        },
      },
    };
  }

  function topModels(models) {
    const rows = models.slice().sort((a, b) => b.totals.requests - a.totals.requests).slice(0, 5);
    return OPX.table([
      { label: t("dashboard.col_model"), value: (m) => h("span", { class: "opx-mono" }, m.model_name), class: "opx-cell-wrap" },
      { label: t("dashboard.col_requests"), value: (m) => fmt.number(m.totals.requests), class: "text-end" },
      { label: t("dashboard.col_success"), value: (m) => fmt.percent(successRate(m.totals.requests, m.totals.successes)), class: "text-end" },
      { label: t("dashboard.col_tokens"), value: (m) => fmt.compact(tokensOf(m.totals)), class: "text-end" },
      { label: t("dashboard.col_cache_hit"), value: (m) => hitRate(m.totals.cache_hit_rate), class: "text-end" },
    ], rows, { empty: t("dashboard.no_usage") });
  }

  /** A cache hit rate as text; "—" when no request reported a cached count. */
  const hitRate = (rate) => (rate == null ? "—" : fmt.percent(rate));

  function topKeys(keys) {
    const rows = keys.slice().sort((a, b) => b.requests - a.requests).slice(0, 5);
    return OPX.table([
      { label: t("dashboard.col_key"), value: (k) => h("span", null, k.name, " ", h("span", { class: "opx-mono opx-muted" }, k.key_hint)), class: "opx-cell-wrap" },
      { label: t("dashboard.col_state"), value: (k) => OPX.stateBadge(k.status) },
      { label: t("dashboard.col_requests"), value: (k) => fmt.number(k.requests), class: "text-end" },
      { label: t("dashboard.col_success"), value: (k) => fmt.percent(successRate(k.requests, k.successes)), class: "text-end" },
      { label: t("dashboard.col_tokens"), value: (k) => fmt.compact(k.prompt_tokens + k.completion_tokens), class: "text-end" },
      { label: t("dashboard.col_cache_hit"), value: (k) => hitRate(k.cache_hit_rate), class: "text-end" },
    ], rows, { empty: t("dashboard.no_usage") });
  }

  function panel(title, note, body) {
    return h("div", { class: "card h-100" },
      h("div", { class: "card-header d-flex justify-content-between align-items-baseline" },
        h("h2", { class: "h6 mb-0" }, title), note ? h("span", { class: "small opx-muted" }, note) : null),
      body);
  }

  async function render(root) {
    const cards = {
      keys: card("dash-keys", t("dashboard.keys")),
      requests: card("dash-requests", t("dashboard.requests_today")),
      success: card("dash-success", t("dashboard.success_today")),
      tokens: card("dash-tokens", t("dashboard.tokens_today")),
      latency: card("dash-latency", t("dashboard.latency")),
      refused: card("dash-refused", t("dashboard.refused_today")),
    };
    const updated = h("span", { class: "small opx-muted", id: "dash-updated" });
    const canvas = h("canvas", { id: "dash-chart", "aria-label": t("dashboard.chart_title"), role: "img" });
    const models = h("div", { class: "card-body p-0", id: "dash-top-models" }, OPX.spinner());
    const keys = h("div", { class: "card-body p-0", id: "dash-top-keys" }, OPX.spinner());
    const failure = h("div");
    root.append(
      h("div", { class: "opx-toolbar" }, h("h1", { class: "opx-page-title opx-grow" }, t("dashboard.title")), updated),
      failure,
      h("div", { class: "row row-cols-2 row-cols-lg-3 row-cols-xl-6 g-2 g-md-3 mb-3" }, Object.values(cards).map((c) => c.el)),
      h("div", { class: "card mb-3" },
        h("div", { class: "card-header" }, h("h2", { class: "h6 mb-0" }, t("dashboard.chart_title"))),
        h("div", { class: "card-body" }, h("div", { class: "opx-chart-box" }, canvas))),
      h("div", { class: "row g-3" },
        h("div", { class: "col-lg-6" }, panel(t("dashboard.top_models"), t("dashboard.all_time"), models)),
        h("div", { class: "col-lg-6" }, panel(t("dashboard.top_keys"), t("dashboard.all_time"), keys))));

    let chart = null;
    let timer = null;
    let stopped = false;

    // Each part paints as soon as its own answer arrives; render resolves when all have.
    async function load() {
      const overview = OPX.api("GET", "/api/stats/overview").then((o) => fillCards(cards, o));
      const refused = OPX.api("GET", "/api/stats/refused?period=today").then((r) => fillRefused(cards.refused, r));
      const hourly = OPX.api("GET", "/api/stats/hourly?hours=24").then((data) => {
        if (stopped) return;
        const config = chartConfig(hourlySeries(data));
        if (chart) {
          chart.data.labels = config.data.labels;
          config.data.datasets.forEach((d, i) => { chart.data.datasets[i].data = d.data; });
          chart.update("none");
        } else {
          chart = OPX.chart(canvas, config);
        }
      });
      const tops = Promise.all([OPX.api("GET", "/api/stats/models"), OPX.api("GET", "/api/stats/keys")]).then(([m, k]) => {
        OPX.clear(models).appendChild(topModels(m));
        OPX.clear(keys).appendChild(topKeys(k));
      });
      await Promise.all([overview, refused, hourly, tops]);
      OPX.clear(failure);
      updated.textContent = t("dashboard.updated", { time: new Date().toLocaleTimeString(OPX.lang() === "zh" ? "zh-CN" : "en-US") });
    }

    function schedule() {
      timer = setTimeout(async () => {
        if (stopped) return;
        // A hidden tab does not need fresh numbers; look again next round.
        if (!document.hidden) {
          try { await load(); } catch (err) {
            if (err.status === 401 || stopped) return;
            OPX.clear(failure).appendChild(OPX.errorBox(err));
          }
        }
        if (!stopped) schedule();
      }, REFRESH_MS);
    }

    await load();
    schedule();
    return () => { stopped = true; clearTimeout(timer); };
  }

  OPX.page("dashboard", { title: "nav.dashboard", render });
})();
