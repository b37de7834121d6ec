/* Objects: the OpenAI objects created through the gateway (GET /api/objects), newest first, paged, filtered by
 * client token, key and kind; each row names the key that holds the object ("removed key" once it is gone) and
 * the token that owns it, and can be revoked. A removed key's objects can be reassigned to another key (a
 * replacement key of the same OpenAI account) or revoked all at once; the keys page offers the same for each
 * removed key that still holds objects (OPX.removedKeyActions). */
"use strict";

(function () {
  const { h, t, fmt } = OPX;
  const PAGE = 25;

  OPX.messages({
    en: {
      "nav.objects": "Objects",
      "objects.title": "Objects", "objects.token": "Client token", "objects.key": "Key", "objects.kind": "Kind",
      "objects.any_token": "Any token", "objects.any_key": "Any key", "objects.any_kind": "Any kind",
      "objects.col_id": "Object", "objects.col_kind": "Kind", "objects.col_key": "Key", "objects.col_token": "Client token",
      "objects.col_created": "Created", "objects.col_expires": "Record kept until", "objects.col_actions": "Actions",
      "objects.removed_key": "removed key #{id}", "objects.revoke": "Revoke",
      "objects.total": "{count} objects", "objects.empty": "No object matches.",
      "objects.revoke_confirm": "Revoke the record of {id}? The gateway forgets which key holds it and which token owns it: requests naming it are routed as for an id it never saw.",
      "objects.revoked": "Record of {id} revoked.",
      "objects.removed_title": "Removed key #{id} still holds {count} objects.",
      "objects.removed_hint": "Reassign them to a replacement key of the same OpenAI account, or revoke them.",
      "objects.reassign_to": "Reassign to", "objects.reassign": "Reassign", "objects.revoke_all": "Revoke all",
      "objects.no_target": "Add the replacement key first.",
      "objects.reassigned": "{count} objects moved to key “{name}”.",
      "objects.revoke_all_confirm": "Revoke the records of all {count} objects of removed key #{id}?",
      "objects.revoked_all": "{count} records revoked.",
      "keys.col_objects": "Objects", "keys.removed_with_objects": "Removed keys that still hold objects",
    },
    zh: {
      "nav.objects": "对象",
      "objects.title": "对象", "objects.token": "客户端令牌", "objects.key": "密钥", "objects.kind": "类型",
      "objects.any_token": "全部令牌", "objects.any_key": "全部密钥", "objects.any_kind": "全部类型",
      "objects.col_id": "对象", "objects.col_kind": "类型", "objects.col_key": "密钥", "objects.col_token": "客户端令牌",
      "objects.col_created": "创建时间", "objects.col_expires": "记录保留至", "objects.col_actions": "操作",
      "objects.removed_key": "已删除的密钥 #{id}", "objects.revoke": "撤销",
      "objects.total": "共 {count} 个对象", "objects.empty": "没有匹配的对象。",
      "objects.revoke_confirm": "撤销 {id} 的记录？网关将不再知道它属于哪个密钥和哪个令牌：指向它的请求将按从未见过的 id 路由。",
      "objects.revoked": "已撤销 {id} 的记录。",
      "objects.removed_title": "已删除的密钥 #{id} 仍有 {count} 个对象。",
      "objects.removed_hint": "可将它们转移到同一 OpenAI 账户的替代密钥，或撤销它们。",
      "objects.reassign_to": "转移到", "objects.reassign": "转移", "objects.revoke_all": "全部撤销",
      "objects.no_target": "请先添加替代密钥。",
      "objects.reassigned": "已将 {count} 个对象转移到密钥“{name}”。",
      "objects.revoke_all_confirm": "撤销已删除的密钥 #{id} 的全部 {count} 个对象的记录？",
      "objects.revoked_all": "已撤销 {count} 条记录。",
      "keys.col_objects": "对象", "keys.removed_with_objects": "仍有对象的已删除密钥",
    },
  });

  /** A removed key's objects: how many, reassign to one of `keys`, revoke all; `done` runs after a change. */
  function removedKeyActions(keyId, count, keys, done) {
    const target = h("select", { class: "form-select form-select-sm w-auto", "aria-label": t("objects.reassign_to"), dataset: { role: "target" } },
      keys.map((k) => h("option", { value: String(k.id) }, k.name + " (#" + k.id + ")")));
    const reassign = h("button", { type: "button", class: "btn btn-sm btn-primary", dataset: { action: "reassign" }, disabled: keys.length === 0,
      on: { click: async () => {
        const to = keys.find((k) => String(k.id) === target.value);
        try {
          const result = await OPX.api("POST", "/api/objects/reassign", { from_key_id: keyId, to_key_id: Number(target.value) });
          OPX.toast(t("objects.reassigned", { count: fmt.number(result.moved), name: to ? to.name : target.value }), "success");
          done();
        } catch (err) { OPX.toast(err.message, "danger"); }
      } } }, t("objects.reassign"));
    const revoke = h("button", { type: "button", class: "btn btn-sm btn-outline-danger", dataset: { action: "revoke-key" },
      on: { click: async () => {
        if (!(await OPX.confirm(t("objects.revoke_all_confirm", { id: keyId, count: fmt.number(count) })))) return;
        try {
          const result = await OPX.api("POST", "/api/objects/revoke", { key_id: keyId });
          OPX.toast(t("objects.revoked_all", { count: fmt.number(result.revoked) }), "success");
          done();
        } catch (err) { OPX.toast(err.message, "danger"); }
      } } }, t("objects.revoke_all"));
    return h("div", { class: "alert alert-warning", dataset: { removedKey: String(keyId) } },
      h("div", { class: "fw-semibold" }, t("objects.removed_title", { id: keyId, count: fmt.number(count) })),
      h("div", { class: "small mb-2" }, keys.length ? t("objects.removed_hint") : t("objects.no_target")),
      h("div", { class: "d-flex flex-wrap align-items-center gap-2" },
        h("a", { href: "#/objects?key_id=" + keyId, class: "me-2" }, t("objects.total", { count: fmt.number(count) })),
        h("label", { class: "small" }, t("objects.reassign_to")), target, reassign, revoke));
  }
  OPX.removedKeyActions = removedKeyActions;

  async function render(root, params) {
    // The page's own box, in root at once: a render overtaken by a newer navigation fills a detached box.
    const view = root.appendChild(h("div"));
    const [keys, tokens, summary] = await Promise.all([
      OPX.api("GET", "/api/keys"), OPX.api("GET", "/api/tokens"), OPX.api("GET", "/api/objects/summary"),
    ]);
    const removed = summary.keys.filter((k) => k.key_removed);
    const chosen = (name) => params.get(name) || "";
    const token = h("select", { id: "objects-token", class: "form-select form-select-sm w-auto", "aria-label": t("objects.token") },
      h("option", { value: "" }, t("objects.any_token")),
      tokens.map((tk) => h("option", { value: String(tk.id) }, tk.name)));
    const key = h("select", { id: "objects-key", class: "form-select form-select-sm w-auto", "aria-label": t("objects.key") },
      h("option", { value: "" }, t("objects.any_key")),
      keys.map((k) => h("option", { value: String(k.id) }, k.name)),
      removed.map((k) => h("option", { value: String(k.key_id) }, t("objects.removed_key", { id: k.key_id }))));
    // Free text: kinds are OpenAI's `object` values (file, batch, response, vector_store.file …), more than a list keeps up with.
    const kind = h("input", { type: "search", id: "objects-kind", class: "form-control form-control-sm w-auto", placeholder: t("objects.any_kind"), "aria-label": t("objects.kind") });
    token.value = chosen("token_id");
    key.value = chosen("key_id");
    kind.value = chosen("kind");
    for (const select of [token, key, kind]) {
      select.addEventListener("change", () => {
        const query = {};
        if (token.value) query.token_id = token.value;
        if (key.value) query.key_id = key.value;
        if (kind.value.trim()) query.kind = kind.value.trim();
        OPX.go("objects", query);
      });
    }
    const removedBox = h("div", { id: "objects-removed-key" });
    const shownRemoved = removed.find((k) => String(k.key_id) === key.value);
    if (shownRemoved) removedBox.appendChild(removedKeyActions(shownRemoved.key_id, shownRemoved.count, keys, () => OPX.reload()));
    const total = h("div", { id: "objects-total", class: "small opx-muted mb-1" });
    const tableBox = h("div", { id: "objects-table" });
    const pager = h("div", { id: "objects-pager" });

    function keyCell(object) {
      return object.key_removed
        ? h("span", { class: "badge text-bg-warning", dataset: { role: "removed" } }, t("objects.removed_key", { id: object.key_id }))
        : object.key_name;
    }

    async function revoke(object) {
      if (!(await OPX.confirm(t("objects.revoke_confirm", { id: object.object_id })))) return;
      try {
        await OPX.api("DELETE", "/api/objects/" + encodeURIComponent(object.object_id));
        OPX.toast(t("objects.revoked", { id: object.object_id }), "success");
        OPX.reload();
      } catch (err) { OPX.toast(err.message, "danger"); }
    }

    async function load(offset) {
      const query = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
      if (token.value) query.set("token_id", token.value);
      if (key.value) query.set("key_id", key.value);
      if (kind.value.trim()) query.set("kind", kind.value.trim());
      const page = await OPX.api("GET", "/api/objects?" + query);
      total.textContent = t("objects.total", { count: fmt.number(page.total) });
      tableBox.replaceChildren(OPX.table([
        { label: t("objects.col_id"), value: (o) => h("code", { class: "small" }, o.object_id) },
        { label: t("objects.col_kind"), value: (o) => o.kind },
        { label: t("objects.col_key"), value: keyCell },
        { label: t("objects.col_token"), value: (o) => o.token_name || "#" + o.token_id },
        { class: "opx-nowrap", label: t("objects.col_created"), value: (o) => fmt.time(o.created_at) },
        { class: "opx-nowrap", label: t("objects.col_expires"), value: (o) => fmt.time(o.expires_at) },
        { label: t("objects.col_actions"), class: "text-end",
          value: (o) => h("button", { type: "button", class: "btn btn-sm btn-outline-danger", dataset: { action: "revoke" }, on: { click: () => revoke(o) } }, t("objects.revoke")) },
      ], page.data, { empty: t("objects.empty"), rowAttrs: (o) => ({ dataset: { objectId: o.object_id } }) }));
      pager.replaceChildren(OPX.pager({ offset: page.offset, limit: page.limit, count: page.data.length, total: page.total, onChange: load }));
    }

    view.append(
      h("div", { class: "opx-toolbar" }, h("h1", { class: "opx-page-title opx-grow" }, t("objects.title"))),
      h("div", { class: "d-flex flex-wrap align-items-center gap-2 mb-3" }, token, key, kind),
      removedBox, total, tableBox, pager);
    await load(0);
  }

  OPX.page("objects", { title: "nav.objects", render });
})();
