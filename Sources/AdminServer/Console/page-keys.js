/* Keys: the upstream key pool. A table (name, masked value, state with its reason and next probe, requests,
 * success rate, tokens, last used, rate-limit headroom); add, edit, delete (confirmed), test one key, bulk
 * import, test all with progress; filter by state and search (both in the browser: one GET /api/keys holds
 * everything the table shows). */
"use strict";

(function () {
  const { h, t, fmt } = OPX;
  const STATES = ["active", "cooling", "quota_exhausted", "invalid", "disabled"];
  const POLL_MS = 500;

  OPX.messages({
    en: {
      "keys.title": "Upstream keys", "keys.add": "Add key", "keys.import": "Import", "keys.test_all": "Test all",
      "keys.search": "Search name, key or reason", "keys.filter": "State", "keys.filter_all": "State: all", "keys.count": "{shown} of {total} keys",
      "keys.col_name": "Name", "keys.col_key": "Key", "keys.col_state": "State", "keys.col_requests": "Requests",
      "keys.col_success": "Success", "keys.col_tokens": "Tokens", "keys.col_cache_hit": "Cache hit rate", "keys.col_last_used": "Last used",
      "keys.col_headroom": "Rate-limit headroom", "keys.col_actions": "Actions",
      "keys.test": "Test", "keys.edit": "Edit", "keys.delete": "Delete",
      "keys.next_probe": "next probe {when}", "keys.since": "since {when}",
      "keys.headroom": "{requests} req · {tokens} tok", "keys.resets": "resets {when}",
      "keys.no_headroom": "not reported yet",
      "keys.empty": "No keys yet. Add one, or import many at once.", "keys.none_match": "No key matches.",
      "keys.add_title": "Add an upstream key", "keys.field_name": "Name", "keys.field_value": "Key",
      "keys.field_value_hint": "The OpenAI API key, e.g. sk-…; stored encrypted, shown masked.",
      "keys.field_status": "Status", "keys.status_keep": "Keep: {state}",
      "keys.added": "Key “{name}” added.", "keys.saved": "Key “{name}” saved.",
      "keys.edit_title": "Edit key “{name}”",
      "keys.delete_confirm": "Delete key “{name}” ({key})? Requests will no longer use it.",
      "keys.deleted": "Key “{name}” deleted.",
      "keys.import_title": "Import keys", "keys.import_field": "Keys, one per line",
      "keys.import_hint": "Blank lines are skipped; keys already in the pool count as duplicates.",
      "keys.import_prefix": "Name prefix (optional)", "keys.import_none": "Paste at least one key.",
      "keys.import_result": "Import: {added} added · {duplicate} duplicate · {rejected} rejected",
      "keys.import_rejected": "Rejected lines: {lines}",
      "keys.testing": "Testing “{name}”…",
      "keys.test_ok": "Key “{name}” works: HTTP {status} in {latency}{models}. State: {before} → {after}.",
      "keys.test_fail": "Key “{name}” failed: {error} (HTTP {status}, {latency}). State: {before} → {after}.",
      "keys.test_models": ", {count} models",
      "keys.test_all_running": "Testing keys: {done} of {total} · {passed} passed · {failed} failed",
      "keys.test_all_done": "Tested {total} keys: {passed} passed · {failed} failed",
    },
    zh: {
      "keys.title": "上游密钥", "keys.add": "添加密钥", "keys.import": "批量导入", "keys.test_all": "全部测试",
      "keys.search": "搜索名称、密钥或原因", "keys.filter": "状态", "keys.filter_all": "状态：全部", "keys.count": "显示 {shown} 个，共 {total} 个密钥",
      "keys.col_name": "名称", "keys.col_key": "密钥", "keys.col_state": "状态", "keys.col_requests": "请求数",
      "keys.col_success": "成功率", "keys.col_tokens": "令牌数", "keys.col_cache_hit": "缓存命中率", "keys.col_last_used": "最近使用",
      "keys.col_headroom": "限流余量", "keys.col_actions": "操作",
      "keys.test": "测试", "keys.edit": "编辑", "keys.delete": "删除",
      "keys.next_probe": "下次探测 {when}", "keys.since": "自 {when}",
      "keys.headroom": "请求 {requests} · 令牌 {tokens}", "keys.resets": "{when}重置",
      "keys.no_headroom": "尚未上报",
      "keys.empty": "还没有密钥。可以逐个添加，也可以批量导入。", "keys.none_match": "没有匹配的密钥。",
      "keys.add_title": "添加上游密钥", "keys.field_name": "名称", "keys.field_value": "密钥",
      "keys.field_value_hint": "OpenAI API 密钥，例如 sk-…；加密存储，仅显示掩码。",
      "keys.field_status": "状态", "keys.status_keep": "保持：{state}",
      "keys.added": "已添加密钥“{name}”。", "keys.saved": "已保存密钥“{name}”。",
      "keys.edit_title": "编辑密钥“{name}”",
      "keys.delete_confirm": "确定删除密钥“{name}”（{key}）吗？删除后请求将不再使用它。",
      "keys.deleted": "已删除密钥“{name}”。",
      "keys.import_title": "批量导入密钥", "keys.import_field": "密钥，每行一个",
      "keys.import_hint": "空行会被跳过；已在密钥池中的密钥计为重复。",
      "keys.import_prefix": "名称前缀（可选）", "keys.import_none": "请至少粘贴一个密钥。",
      "keys.import_result": "导入结果：新增 {added} 个 · 重复 {duplicate} 个 · 拒绝 {rejected} 个",
      "keys.import_rejected": "被拒绝的行：{lines}",
      "keys.testing": "正在测试“{name}”…",
      "keys.test_ok": "密钥“{name}”可用：HTTP {status}，耗时 {latency}{models}。状态：{before} → {after}。",
      "keys.test_fail": "密钥“{name}”测试失败：{error}（HTTP {status}，{latency}）。状态：{before} → {after}。",
      "keys.test_models": "，{count} 个模型",
      "keys.test_all_running": "正在测试密钥：{done}/{total} · 通过 {passed} · 失败 {failed}",
      "keys.test_all_done": "已测试 {total} 个密钥：通过 {passed} · 失败 {failed}",
    },
  });

  // Kept across re-renders (a language switch), so the filter and search stay as they were.
  const view = { filter: "", search: "" };

  const successRate = (k) => (k.usage_count > 0 ? k.success_count / k.usage_count : null);

  function matches(key) {
    if (view.filter && key.status !== view.filter) return false;
    const q = view.search.trim().toLowerCase();
    if (!q) return true;
    return [key.name, key.key_value, String(key.id), key.status_reason || ""].some((s) => s.toLowerCase().includes(q));
  }

  function stateCell(key) {
    const details = [];
    if (key.status_reason) details.push(h("div", { class: "small opx-muted opx-cell-wrap", dataset: { role: "reason" } }, key.status_reason));
    if (key.next_probe_at) details.push(h("div", { class: "small opx-muted" }, t("keys.next_probe", { when: fmt.relative(key.next_probe_at) })));
    else if (key.status !== "active" && key.status_since) details.push(h("div", { class: "small opx-muted" }, t("keys.since", { when: fmt.relative(key.status_since) })));
    return [OPX.stateBadge(key.status), details];
  }

  function headroomCell(key) {
    const r = key.rate_limit || {};
    if (r.remaining_requests === null && r.remaining_tokens === null || r.remaining_requests === undefined) {
      return h("span", { class: "small opx-muted" }, t("keys.no_headroom"));
    }
    const reset = r.reset_requests_at || r.reset_tokens_at;
    return [
      h("div", { class: "opx-nowrap" }, t("keys.headroom", { requests: fmt.compact(r.remaining_requests), tokens: fmt.compact(r.remaining_tokens) })),
      reset ? h("div", { class: "small opx-muted" }, t("keys.resets", { when: fmt.relative(reset) })) : null,
    ];
  }

  function keyForm(container, key) {
    const name = h("input", { class: "form-control", id: "key-name", required: true, maxlength: "100", value: key ? key.name : "" });
    const value = key ? null : h("input", { class: "form-control opx-mono", id: "key-value", required: true, autocomplete: "off", spellcheck: "false", maxlength: "512" });
    const options = [];
    if (key && key.status !== "active" && key.status !== "disabled") options.push(h("option", { value: "" }, t("keys.status_keep", { state: t("state." + key.status) })));
    options.push(h("option", { value: "active" }, t("state.active")), h("option", { value: "disabled" }, t("state.disabled")));
    const status = h("select", { class: "form-select", id: "key-status", value: key ? (options.length === 3 ? "" : key.status) : "active" }, options);
    container.append(
      h("div", { class: "mb-3" }, h("label", { class: "form-label", for: "key-name" }, t("keys.field_name")), name),
      value ? h("div", { class: "mb-3" }, h("label", { class: "form-label", for: "key-value" }, t("keys.field_value")), value,
        h("div", { class: "form-text" }, t("keys.field_value_hint"))) : null,
      h("div", { class: "mb-1" }, h("label", { class: "form-label", for: "key-status" }, t("keys.field_status")), status));
    return { name, value, status };
  }

  async function render(root) {
    let keys = [];
    let objects = { keys: [] };
    let poll = null;
    let left = false;

    const search = h("input", { type: "search", id: "keys-search", class: "form-control", placeholder: t("keys.search"), "aria-label": t("keys.search"), value: view.search,
      on: { input: () => { view.search = search.value; draw(); } } });
    const filter = h("select", { id: "keys-filter", class: "form-select", "aria-label": t("keys.filter"), value: view.filter,
      on: { change: () => { view.filter = filter.value; draw(); } } },
      h("option", { value: "" }, t("keys.filter_all")),
      STATES.map((s) => h("option", { value: s }, t("state." + s))));
    const testAll = h("button", { type: "button", id: "keys-test-all", class: "btn btn-outline-secondary", on: { click: runTestAll } }, t("keys.test_all"));
    const notices = h("div", { id: "keys-notices" });
    const count = h("div", { class: "small opx-muted mt-2", id: "keys-count" });
    const tableBox = h("div", { class: "card" }, h("div", { class: "card-body p-0", id: "keys-table" }, OPX.spinner()));
    const removedBox = h("div", { id: "keys-removed-objects" });

    root.append(
      h("div", { class: "opx-toolbar" },
        h("h1", { class: "opx-page-title opx-grow" }, t("keys.title")),
        h("button", { type: "button", id: "keys-add", class: "btn btn-primary", on: { click: addKey } }, t("keys.add")),
        h("button", { type: "button", id: "keys-import", class: "btn btn-outline-primary", on: { click: importKeys } }, t("keys.import")),
        testAll),
      h("div", { class: "row g-2 mb-3" },
        h("div", { class: "col-md-8" }, search),
        h("div", { class: "col-md-4" }, filter)),
      notices, tableBox, count, removedBox);

    /** Shows one notice above the table, replacing an earlier one with the same role. */
    function notice(role, kind, ...content) {
      const old = notices.querySelector('[data-role="' + role + '"]');
      const el = h("div", { class: ["alert alert-dismissible", "alert-" + kind], role: "status", id: "keys-" + role, dataset: { role } },
        ...content, h("button", { type: "button", class: "btn-close", "data-bs-dismiss": "alert", "aria-label": t("common.close") }));
      if (old) old.replaceWith(el);
      else notices.appendChild(el);
      return el;
    }

    async function load() {
      [keys, objects] = await Promise.all([OPX.api("GET", "/api/keys"), OPX.api("GET", "/api/objects/summary")]);
      draw();
    }

    function objectsCell(key) {
      const count = (objects.keys.find((k) => k.key_id === key.id) || { count: 0 }).count;
      return count ? h("a", { href: "#/objects?key_id=" + key.id, dataset: { role: "objects" } }, fmt.number(count)) : "0";
    }

    /** The removed keys that still hold objects, each with reassign and revoke (page-objects.js). */
    function drawRemoved() {
      const removed = objects.keys.filter((k) => k.key_removed);
      removedBox.replaceChildren(...(removed.length
        ? [h("h2", { class: "h6 mt-4" }, t("keys.removed_with_objects")),
          ...removed.map((k) => OPX.removedKeyActions(k.key_id, k.count, keys, load))]
        : []));
    }

    function draw() {
      const shown = keys.filter(matches);
      const columns = [
        { label: t("keys.col_name"), value: (k) => h("span", { class: "fw-semibold", dataset: { role: "name" } }, k.name), class: "opx-cell-wrap" },
        { label: t("keys.col_key"), value: (k) => h("span", { class: "opx-mono opx-nowrap" }, k.key_value) },
        { label: t("keys.col_state"), value: stateCell },
        { label: t("keys.col_requests"), value: (k) => fmt.number(k.usage_count), class: "text-end" },
        { label: t("keys.col_success"), value: (k) => fmt.percent(successRate(k)), class: "text-end" },
        { label: t("keys.col_tokens"), value: (k) => fmt.compact(k.prompt_tokens + k.completion_tokens), class: "text-end" },
        { label: t("keys.col_cache_hit"), value: (k) => (k.cache_hit_rate == null ? "—" : fmt.percent(k.cache_hit_rate)), class: "text-end" },
        { label: t("keys.col_last_used"), value: (k) => h("span", { class: "opx-nowrap", title: fmt.time(k.last_used) }, k.last_used ? fmt.relative(k.last_used) : t("common.never")) },
        { label: t("keys.col_headroom"), value: headroomCell },
        { label: t("keys.col_objects"), value: objectsCell, class: "text-end" },
        { label: t("keys.col_actions"), value: actions, class: "text-end opx-nowrap" },
      ];
      const table = OPX.table(columns, shown, {
        empty: keys.length === 0 ? t("keys.empty") : t("keys.none_match"),
        rowAttrs: (k) => ({ dataset: { keyId: k.id, state: k.status } }),
      });
      OPX.clear(tableBox.firstChild).appendChild(table);
      count.textContent = t("keys.count", { shown: fmt.number(shown.length), total: fmt.number(keys.length) });
      drawRemoved();
    }

    function actions(key) {
      return h("div", { class: "btn-group btn-group-sm", role: "group" },
        h("button", { type: "button", class: "btn btn-outline-secondary", dataset: { action: "test" }, on: { click: (e) => testKey(key, e.currentTarget) } }, t("keys.test")),
        h("button", { type: "button", class: "btn btn-outline-secondary", dataset: { action: "edit" }, on: { click: () => editKey(key) } }, t("keys.edit")),
        h("button", { type: "button", class: "btn btn-outline-danger", dataset: { action: "delete" }, on: { click: () => deleteKey(key) } }, t("keys.delete")));
    }

    async function addKey() {
      let fields;
      const added = await OPX.modal({
        title: t("keys.add_title"), okLabel: t("common.add"),
        body: (c) => { fields = keyForm(c, null); },
        onOk: () => OPX.api("POST", "/api/keys", { name: fields.name.value.trim(), key_value: fields.value.value.trim(), status: fields.status.value }),
      });
      if (!added) return;
      OPX.toast(t("keys.added", { name: added.name }), "success");
      await refresh();
    }

    async function editKey(key) {
      let fields;
      const saved = await OPX.modal({
        title: t("keys.edit_title", { name: key.name }), okLabel: t("common.save"),
        body: (c) => { fields = keyForm(c, key); },
        onOk: () => {
          const change = { name: fields.name.value.trim() };
          if (fields.status.value) change.status = fields.status.value;
          return OPX.api("PUT", "/api/keys/" + key.id, change);
        },
      });
      if (!saved) return;
      OPX.toast(t("keys.saved", { name: saved.name }), "success");
      await refresh();
    }

    async function deleteKey(key) {
      if (!(await OPX.confirm(t("keys.delete_confirm", { name: key.name, key: key.key_value }), { okLabel: t("keys.delete") }))) return;
      try {
        await OPX.api("DELETE", "/api/keys/" + key.id);
        OPX.toast(t("keys.deleted", { name: key.name }), "success");
      } catch (err) {
        if (err.status !== 401) OPX.toast(err.message, "danger");
      }
      await refresh();
    }

    async function testKey(key, button) {
      button.disabled = true;
      notice("test-result", "info", t("keys.testing", { name: key.name })).dataset.result = "running";
      try {
        const r = await OPX.api("POST", "/api/keys/" + key.id + "/test");
        const vars = {
          name: key.name, status: r.status, latency: fmt.ms(r.latency_ms), error: r.error || "",
          before: t("state." + r.state_before), after: t("state." + r.state),
          models: r.models ? t("keys.test_models", { count: r.models.length }) : "",
        };
        notice("test-result", r.ok ? "success" : "warning", t(r.ok ? "keys.test_ok" : "keys.test_fail", vars)).dataset.result = r.ok ? "ok" : "failed";
      } catch (err) {
        if (err.status === 401) return;
        notice("test-result", "danger", err.message).dataset.result = "error";
      } finally {
        button.disabled = false;
      }
      await refresh();
    }

    async function importKeys() {
      let text, prefix;
      const result = await OPX.modal({
        title: t("keys.import_title"), okLabel: t("keys.import"), size: "lg",
        body: (c) => {
          text = h("textarea", { id: "import-keys", class: "form-control opx-mono", rows: "8", spellcheck: "false", autocomplete: "off" });
          prefix = h("input", { id: "import-prefix", class: "form-control", maxlength: "100" });
          c.append(
            h("div", { class: "mb-3" }, h("label", { class: "form-label", for: "import-keys" }, t("keys.import_field")), text,
              h("div", { class: "form-text" }, t("keys.import_hint"))),
            h("div", null, h("label", { class: "form-label", for: "import-prefix" }, t("keys.import_prefix")), prefix));
        },
        onOk: () => {
          const lines = text.value.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
          if (lines.length === 0) throw new Error(t("keys.import_none"));
          const body = { keys: lines };
          if (prefix.value.trim()) body.name_prefix = prefix.value.trim();
          return OPX.api("POST", "/api/keys/import", body);
        },
      });
      if (!result) return;
      const el = notice("import-result", result.rejected > 0 ? "warning" : "success",
        h("div", null, t("keys.import_result", { added: result.added, duplicate: result.duplicate, rejected: result.rejected })),
        result.rejected_items.length ? h("div", { class: "small" }, t("keys.import_rejected", { lines: result.rejected_items.map((i) => i + 1).join(", ") })) : null);
      Object.assign(el.dataset, { added: result.added, duplicate: result.duplicate, rejected: result.rejected });
      await refresh();
    }

    async function runTestAll() {
      testAll.disabled = true;
      const bar = h("div", { class: "progress-bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100" });
      const label = h("div", { class: "mb-2" });
      const el = notice("test-all", "info", label, h("div", { class: "progress opx-progress-wrap" }, bar));
      el.dataset.finished = "0";
      const show = (run) => {
        const share = run.total > 0 ? Math.round((run.done / run.total) * 100) : 100;
        bar.style.width = share + "%";
        bar.setAttribute("aria-valuenow", String(share));
        label.textContent = t(run.finished ? "keys.test_all_done" : "keys.test_all_running", run);
        Object.assign(el.dataset, { done: run.done, total: run.total, passed: run.passed, failed: run.failed, finished: run.finished ? "1" : "0" });
      };
      try {
        let run = await OPX.api("POST", "/api/keys/test-all");
        show(run);
        while (!run.finished && !left) {
          await new Promise((resolve) => { poll = setTimeout(resolve, POLL_MS); });
          if (left) return;
          run = await OPX.api("GET", "/api/keys/test-all/" + encodeURIComponent(run.run_id));
          show(run);
        }
        el.classList.replace("alert-info", run.failed > 0 ? "alert-warning" : "alert-success");
      } catch (err) {
        if (err.status !== 401) notice("test-all", "danger", err.message);
      } finally {
        testAll.disabled = false;
      }
      if (!left) await refresh();
    }

    /** Reloads the table after a change; a failure shows above it instead of breaking the page. */
    async function refresh() {
      if (left) return;
      try { await load(); } catch (err) {
        if (err.status !== 401) notice("load-error", "danger", err.message);
      }
    }

    await load();
    return () => { left = true; clearTimeout(poll); };
  }

  OPX.page("keys", { title: "nav.keys", render });
})();
