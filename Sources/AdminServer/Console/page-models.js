/* Models: the models the proxy offers, with their usage; refresh the list from the upstream (with
 * progress), add, edit and delete manual models, enable or disable any. */
"use strict";

(function () {
  const { h, t, fmt } = OPX;

  OPX.messages({
    en: {
      "models.title": "Models", "models.add": "Add model", "models.refresh": "Refresh from upstream",
      "models.search": "Search models", "models.count": "{shown} of {total} models · {enabled} enabled",
      "models.col_name": "Model", "models.col_source": "Source", "models.col_enabled": "Enabled",
      "models.col_requests": "Requests", "models.col_success": "Success", "models.col_tokens": "Tokens", "models.col_cache_hit": "Cache hit rate",
      "models.col_latency": "Avg latency", "models.col_actions": "Actions",
      "models.source_manual": "manual", "models.source_upstream": "upstream",
      "models.edit": "Edit", "models.delete": "Delete",
      "models.empty": "No models yet. Refresh from the upstream, or add one by hand.",
      "models.none_match": "No model matches.",
      "models.refreshing": "Asking the upstream for its models…",
      "models.refreshed": "The upstream lists {total} models; {added} new.",
      "models.add_title": "Add a model", "models.edit_title": "Edit model {name}",
      "models.field_name": "Model name", "models.field_description": "Description",
      "models.field_capabilities": "Capabilities", "models.field_capabilities_hint": "Comma-separated, e.g. chat, vision.",
      "models.field_enabled": "Enabled (clients may use it)",
      "models.added": "Model {name} added.", "models.saved": "Model {name} saved.",
      "models.delete_confirm": "Delete model {name}? Its usage statistics stay.",
      "models.deleted": "Model {name} deleted.",
      "models.enabled": "Model {name} enabled.", "models.disabled": "Model {name} disabled.",
    },
    zh: {
      "models.title": "模型", "models.add": "添加模型", "models.refresh": "从上游刷新",
      "models.search": "搜索模型", "models.count": "显示 {shown} 个，共 {total} 个模型 · 已启用 {enabled} 个",
      "models.col_name": "模型", "models.col_source": "来源", "models.col_enabled": "启用",
      "models.col_requests": "请求数", "models.col_success": "成功率", "models.col_tokens": "令牌数", "models.col_cache_hit": "缓存命中率",
      "models.col_latency": "平均延迟", "models.col_actions": "操作",
      "models.source_manual": "手动", "models.source_upstream": "上游",
      "models.edit": "编辑", "models.delete": "删除",
      "models.empty": "还没有模型。可以从上游刷新，也可以手动添加。",
      "models.none_match": "没有匹配的模型。",
      "models.refreshing": "正在向上游获取模型列表…",
      "models.refreshed": "上游共提供 {total} 个模型，其中 {added} 个是新增的。",
      "models.add_title": "添加模型", "models.edit_title": "编辑模型 {name}",
      "models.field_name": "模型名称", "models.field_description": "描述",
      "models.field_capabilities": "能力", "models.field_capabilities_hint": "用逗号分隔，例如 chat, vision。",
      "models.field_enabled": "启用（客户端可以使用）",
      "models.added": "已添加模型 {name}。", "models.saved": "已保存模型 {name}。",
      "models.delete_confirm": "确定删除模型 {name} 吗？它的用量统计会保留。",
      "models.deleted": "已删除模型 {name}。",
      "models.enabled": "已启用模型 {name}。", "models.disabled": "已停用模型 {name}。",
    },
  });

  const view = { search: "" };
  const path = (name) => "/api/models/" + encodeURIComponent(name);
  const tokensOf = (totals) => (totals ? totals.prompt_tokens + totals.completion_tokens : 0);

  function modelForm(container, model) {
    const name = h("input", { id: "model-name", class: "form-control opx-mono", required: true, maxlength: "200", disabled: Boolean(model), value: model ? model.model_name : "" });
    const description = h("input", { id: "model-description", class: "form-control", maxlength: "1000", value: model ? model.description : "" });
    const capabilities = h("input", { id: "model-capabilities", class: "form-control", value: model ? model.capabilities.join(", ") : "" });
    const enabled = h("input", { id: "model-enabled", class: "form-check-input", type: "checkbox", checked: model ? model.enabled : true });
    container.append(
      h("div", { class: "mb-3" }, h("label", { class: "form-label", for: "model-name" }, t("models.field_name")), name),
      h("div", { class: "mb-3" }, h("label", { class: "form-label", for: "model-description" }, t("models.field_description")), description),
      h("div", { class: "mb-3" }, h("label", { class: "form-label", for: "model-capabilities" }, t("models.field_capabilities")), capabilities,
        h("div", { class: "form-text" }, t("models.field_capabilities_hint"))),
      h("div", { class: "form-check" }, enabled, h("label", { class: "form-check-label", for: "model-enabled" }, t("models.field_enabled"))));
    return () => ({
      model_name: name.value.trim(),
      description: description.value.trim(),
      capabilities: capabilities.value.split(",").map((c) => c.trim().toLowerCase()).filter(Boolean),
      enabled: enabled.checked,
    });
  }

  async function render(root) {
    let models = [];
    let usage = new Map();
    let left = false;

    const search = h("input", { type: "search", id: "models-search", class: "form-control", placeholder: t("models.search"), "aria-label": t("models.search"), value: view.search,
      on: { input: () => { view.search = search.value; draw(); } } });
    const refreshButton = h("button", { type: "button", id: "models-refresh", class: "btn btn-outline-primary", on: { click: refreshFromUpstream } }, t("models.refresh"));
    const notices = h("div", { id: "models-notices" });
    const tableBox = h("div", { class: "card-body p-0", id: "models-table" }, OPX.spinner());
    const count = h("div", { class: "small opx-muted mt-2", id: "models-count" });
    root.append(
      h("div", { class: "opx-toolbar" },
        h("h1", { class: "opx-page-title opx-grow" }, t("models.title")),
        h("button", { type: "button", id: "models-add", class: "btn btn-primary", on: { click: addModel } }, t("models.add")),
        refreshButton),
      h("div", { class: "mb-3" }, search),
      notices, h("div", { class: "card" }, tableBox), count);

    function notice(kind, ...content) {
      const el = h("div", { class: ["alert", "alert-" + kind], role: "status", id: "models-notice" }, ...content);
      OPX.clear(notices).appendChild(el);
      return el;
    }

    async function load(refresh) {
      const [list, stats] = await Promise.all([
        refresh ? OPX.api("POST", "/api/models/refresh") : OPX.api("GET", "/api/models"),
        OPX.api("GET", "/api/stats/models"),
      ]);
      models = list;
      usage = new Map(stats.map((s) => [s.model_name, s.totals]));
      draw();
      return list;
    }

    function draw() {
      const q = view.search.trim().toLowerCase();
      const shown = models.filter((m) => !q || m.model_name.toLowerCase().includes(q) || m.description.toLowerCase().includes(q));
      const columns = [
        { label: t("models.col_name"), class: "opx-cell-wrap", value: (m) => [
          h("div", { class: "opx-mono fw-semibold", dataset: { role: "name" } }, m.model_name),
          m.description ? h("div", { class: "small opx-muted" }, m.description) : null,
          m.capabilities.length ? h("div", { class: "d-flex flex-wrap gap-1 mt-1" }, m.capabilities.map((c) => h("span", { class: "badge text-bg-secondary" }, c))) : null,
        ] },
        { label: t("models.col_source"), value: (m) => h("span", { class: ["badge", m.source === "manual" ? "text-bg-info" : "text-bg-light border"] }, t("models.source_" + m.source)) },
        { label: t("models.col_enabled"), value: (m) => h("div", { class: "form-check form-switch mb-0" },
          h("input", { class: "form-check-input", type: "checkbox", role: "switch", checked: m.enabled, dataset: { action: "toggle" }, "aria-label": t("models.col_enabled") + " " + m.model_name,
            on: { change: (e) => toggle(m, e.currentTarget) } })) },
        { label: t("models.col_requests"), class: "text-end", value: (m) => fmt.number(usage.has(m.model_name) ? usage.get(m.model_name).requests : 0) },
        { label: t("models.col_success"), class: "text-end", value: (m) => {
          const u = usage.get(m.model_name);
          return u && u.requests > 0 ? fmt.percent(u.successes / u.requests) : "—";
        } },
        { label: t("models.col_tokens"), class: "text-end", value: (m) => fmt.compact(tokensOf(usage.get(m.model_name))) },
        { label: t("models.col_cache_hit"), class: "text-end", value: (m) => {
          const u = usage.get(m.model_name);
          return u && u.cache_hit_rate != null ? fmt.percent(u.cache_hit_rate) : "—";
        } },
        { label: t("models.col_latency"), class: "text-end opx-nowrap", value: (m) => fmt.ms(usage.has(m.model_name) ? usage.get(m.model_name).avg_latency_ms : null) },
        { label: t("models.col_actions"), class: "text-end opx-nowrap", value: (m) => m.source !== "manual" ? null :
          h("div", { class: "btn-group btn-group-sm" },
            h("button", { type: "button", class: "btn btn-outline-secondary", dataset: { action: "edit" }, on: { click: () => editModel(m) } }, t("models.edit")),
            h("button", { type: "button", class: "btn btn-outline-danger", dataset: { action: "delete" }, on: { click: () => deleteModel(m) } }, t("models.delete"))) },
      ];
      OPX.clear(tableBox).appendChild(OPX.table(columns, shown, {
        empty: models.length === 0 ? t("models.empty") : t("models.none_match"),
        rowAttrs: (m) => ({ dataset: { model: m.model_name, enabled: m.enabled ? "1" : "0", source: m.source } }),
      }));
      count.textContent = t("models.count", { shown: fmt.number(shown.length), total: fmt.number(models.length), enabled: fmt.number(models.filter((m) => m.enabled).length) });
    }

    async function refreshFromUpstream() {
      refreshButton.disabled = true;
      const before = new Set(models.map((m) => m.model_name));
      const el = notice("info", h("div", { class: "mb-2" }, t("models.refreshing")),
        h("div", { class: "progress" }, h("div", { class: "progress-bar progress-bar-striped progress-bar-animated w-100", role: "progressbar" })));
      el.dataset.state = "running";
      try {
        const list = await load(true);
        const upstream = list.filter((m) => m.source === "upstream");
        const added = list.filter((m) => !before.has(m.model_name)).length;
        notice("success", t("models.refreshed", { total: upstream.length, added })).dataset.state = "done";
      } catch (err) {
        if (err.status !== 401) notice("danger", err.message).dataset.state = "failed";
      } finally {
        refreshButton.disabled = false;
      }
    }

    async function toggle(model, input) {
      input.disabled = true;
      try {
        const changed = await OPX.api("POST", path(model.model_name) + (input.checked ? "/enable" : "/disable"));
        Object.assign(model, changed);
        OPX.toast(t(changed.enabled ? "models.enabled" : "models.disabled", { name: model.model_name }), "success");
      } catch (err) {
        input.checked = model.enabled;
        if (err.status !== 401) OPX.toast(err.message, "danger");
      } finally {
        input.disabled = false;
      }
      draw();
    }

    async function addModel() {
      let collect;
      const added = await OPX.modal({
        title: t("models.add_title"), okLabel: t("common.add"),
        body: (c) => { collect = modelForm(c, null); },
        onOk: () => OPX.api("POST", "/api/models", collect()),
      });
      if (!added) return;
      OPX.toast(t("models.added", { name: added.model_name }), "success");
      await reloadQuietly();
    }

    async function editModel(model) {
      let collect;
      const saved = await OPX.modal({
        title: t("models.edit_title", { name: model.model_name }), okLabel: t("common.save"),
        body: (c) => { collect = modelForm(c, model); },
        onOk: () => {
          const { description, capabilities, enabled } = collect();
          return OPX.api("PUT", path(model.model_name), { description, capabilities, enabled });
        },
      });
      if (!saved) return;
      OPX.toast(t("models.saved", { name: saved.model_name }), "success");
      await reloadQuietly();
    }

    async function deleteModel(model) {
      if (!(await OPX.confirm(t("models.delete_confirm", { name: model.model_name }), { okLabel: t("models.delete") }))) return;
      try {
        await OPX.api("DELETE", path(model.model_name));
        OPX.toast(t("models.deleted", { name: model.model_name }), "success");
      } catch (err) {
        if (err.status !== 401) OPX.toast(err.message, "danger");
      }
      await reloadQuietly();
    }

    async function reloadQuietly() {
      if (left) return;
      try { await load(false); } catch (err) {
        if (err.status !== 401) notice("danger", err.message);
      }
    }

    await load(false);
    return () => { left = true; };
  }

  OPX.page("models", { title: "nav.models", render });
})();
