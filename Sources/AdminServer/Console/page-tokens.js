// Client tokens page: create a token (its value is shown once, with a copy button), list them, change a
// token's limits (allowed models, requests per minute, token quota, expiry) and revoke one.
(function () {
  'use strict';
  const { h, t } = OPX;

  OPX.messages({
    en: {
      'tokens.title': 'Client tokens',
      'tokens.create': 'Create token',
      'tokens.createTitle': 'New client token',
      'tokens.editTitle': 'Edit token “{name}”',
      'tokens.name': 'Name',
      'tokens.allowedModels': 'Allowed models',
      'tokens.allowedModelsHelp': 'None selected: every model.',
      'tokens.rpm': 'Requests per minute',
      'tokens.quota': 'Token quota',
      'tokens.expires': 'Expires',
      'tokens.noLimit': 'no limit',
      'tokens.never': 'never',
      'tokens.anyModel': 'any model',
      'tokens.save': 'Save',
      'tokens.cancel': 'Cancel',
      'tokens.edit': 'Edit',
      'tokens.revoke': 'Revoke',
      'tokens.revokeConfirm': 'Revoke the token “{name}”? Clients using it are refused at once. This cannot be undone.',
      'tokens.revoked': 'Token “{name}” revoked.',
      'tokens.saved': 'Token “{name}” saved.',
      'tokens.valueTitle': 'Token created',
      'tokens.valueOnce': 'Copy this token now. It is shown only this once and cannot be shown again.',
      'tokens.copy': 'Copy',
      'tokens.copied': 'Copied to the clipboard.',
      'tokens.copySelected': 'Selected: press Ctrl+C to copy.',
      'tokens.done': 'I have saved it',
      'tokens.empty': 'No client token yet.',
      'tokens.col.name': 'Name',
      'tokens.col.token': 'Token',
      'tokens.col.status': 'Status',
      'tokens.col.limits': 'Limits',
      'tokens.col.usage': 'Usage',
      'tokens.col.lastUsed': 'Last used',
      'tokens.col.actions': 'Actions',
      'tokens.status.active': 'active',
      'tokens.status.revoked': 'revoked',
      'tokens.status.expired': 'expired',
      'tokens.limitRpm': '{n}/min',
      'tokens.limitQuota': 'quota {used} / {quota}',
      'tokens.limitExpires': 'expires {time}',
      'tokens.usage': '{requests} requests · {tokens} tokens',
      'tokens.neverUsed': 'never',
    },
    zh: {
      'tokens.title': '客户端令牌',
      'tokens.create': '创建令牌',
      'tokens.createTitle': '新建客户端令牌',
      'tokens.editTitle': '编辑令牌“{name}”',
      'tokens.name': '名称',
      'tokens.allowedModels': '允许的模型',
      'tokens.allowedModelsHelp': '不选择则允许所有模型。',
      'tokens.rpm': '每分钟请求数',
      'tokens.quota': '令牌配额',
      'tokens.expires': '过期时间',
      'tokens.noLimit': '不限',
      'tokens.never': '永不过期',
      'tokens.anyModel': '所有模型',
      'tokens.save': '保存',
      'tokens.cancel': '取消',
      'tokens.edit': '编辑',
      'tokens.revoke': '吊销',
      'tokens.revokeConfirm': '确定吊销令牌“{name}”吗？使用它的客户端将立即被拒绝，此操作无法撤销。',
      'tokens.revoked': '令牌“{name}”已吊销。',
      'tokens.saved': '令牌“{name}”已保存。',
      'tokens.valueTitle': '令牌已创建',
      'tokens.valueOnce': '请立即复制此令牌。它只显示这一次，之后无法再次查看。',
      'tokens.copy': '复制',
      'tokens.copied': '已复制到剪贴板。',
      'tokens.copySelected': '已选中，请按 Ctrl+C 复制。',
      'tokens.done': '我已保存',
      'tokens.empty': '还没有客户端令牌。',
      'tokens.col.name': '名称',
      'tokens.col.token': '令牌',
      'tokens.col.status': '状态',
      'tokens.col.limits': '限制',
      'tokens.col.usage': '用量',
      'tokens.col.lastUsed': '最近使用',
      'tokens.col.actions': '操作',
      'tokens.status.active': '有效',
      'tokens.status.revoked': '已吊销',
      'tokens.status.expired': '已过期',
      'tokens.limitRpm': '每分钟 {n} 次',
      'tokens.limitQuota': '配额 {used} / {quota}',
      'tokens.limitExpires': '{time} 过期',
      'tokens.usage': '{requests} 次请求 · {tokens} 个令牌',
      'tokens.neverUsed': '从未使用',
    },
  });

  /// `datetime-local` value (local time, minutes) of an ISO time, or ''.
  function isoToLocal(iso) {
    if (!iso) return '';
    const date = new Date(iso);
    const pad = (n) => String(n).padStart(2, '0');
    return (
      `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
      `T${pad(date.getHours())}:${pad(date.getMinutes())}`
    );
  }

  /// Copies `input`'s text; where the clipboard API is not there (plain http, old browser) the text is
  /// selected so the operator can copy it by hand.
  async function copyValue(input) {
    try {
      if (!navigator.clipboard || !window.isSecureContext) throw new Error('no clipboard');
      await navigator.clipboard.writeText(input.value);
      OPX.toast(t('tokens.copied'), 'success');
    } catch (_) {
      input.focus();
      input.select();
      OPX.toast(t('tokens.copySelected'), 'info');
    }
  }

  /// Shows a new token's value once. Nothing keeps it: when the dialog closes, the nodes holding it go away.
  async function showValueOnce(value) {
    await OPX.modal({
      title: t('tokens.valueTitle'),
      okLabel: t('tokens.done'),
      body(node) {
        const input = h('input', {
          id: 'token-value',
          class: 'form-control font-monospace',
          readOnly: true,
          value,
          'aria-label': t('tokens.valueTitle'),
        });
        const copy = h('button', { id: 'token-copy', type: 'button', class: 'btn btn-outline-primary' }, t('tokens.copy'));
        copy.addEventListener('click', () => copyValue(input));
        node.append(
          h('div', { class: 'alert alert-warning py-2' }, t('tokens.valueOnce')),
          h('div', { class: 'input-group' }, input, copy),
        );
      },
    });
  }

  /// The create/edit form. `token` is the token edited, or null for a new one. Resolves on save.
  function tokenForm(models, token, onSaved, onCancel) {
    const feedback = {};
    const control = (field, node, help) => {
      feedback[field] = h('div', { class: 'invalid-feedback', id: `token-${field}-error` });
      return h(
        'div',
        { class: 'col-12 col-md-6' },
        h('label', { class: 'form-label', for: node.id }, t(labelKey(field))),
        node,
        help ? h('div', { class: 'form-text' }, help) : '',
        feedback[field],
      );
    };
    const name = h('input', { id: 'token-name', class: 'form-control', value: token ? token.name : '', maxlength: '200' });
    const allowed = h(
      'select',
      { id: 'token-models', class: 'form-select', multiple: true, size: String(Math.min(5, Math.max(2, models.length))) },
      ...models.map((m) => h('option', { value: m }, m)),
    );
    const chosen = new Set((token && token.allowed_models) || []);
    Array.from(allowed.options).forEach((option) => (option.selected = chosen.has(option.value)));
    const rpm = h('input', {
      id: 'token-rpm',
      type: 'number',
      min: '1',
      class: 'form-control',
      placeholder: t('tokens.noLimit'),
      value: token && token.rpm_limit != null ? String(token.rpm_limit) : '',
    });
    const quota = h('input', {
      id: 'token-quota',
      type: 'number',
      min: '1',
      class: 'form-control',
      placeholder: t('tokens.noLimit'),
      value: token && token.token_quota != null ? String(token.token_quota) : '',
    });
    const expires = h('input', {
      id: 'token-expires',
      type: 'datetime-local',
      class: 'form-control',
      value: token ? isoToLocal(token.expires_at) : '',
    });
    const save = h('button', { id: 'token-save', type: 'button', class: 'btn btn-primary' }, t(token ? 'tokens.save' : 'tokens.create'));
    const cancel = h('button', { id: 'token-cancel', type: 'button', class: 'btn btn-outline-secondary' }, t('tokens.cancel'));
    const general = h('div', { id: 'token-form-error', class: 'alert alert-danger d-none' });
    const controls = { name, allowed_models: allowed, rpm_limit: rpm, token_quota: quota, expires_at: expires };

    // Validation messages under the field the API names (allowed_models[2] → allowed_models).
    const { clear: clearErrors, show: showError } = OPX.formErrors(controls, feedback, general);

    /// The fields as the API takes them; for an edit only those that changed, so an untouched expiry that
    /// has passed meanwhile is not refused as "not in the future".
    function body() {
      const number = (input) => (input.value.trim() === '' ? null : Number(input.value));
      const picked = Array.from(allowed.selectedOptions).map((option) => option.value);
      const expiry = expires.value ? new Date(expires.value) : null;
      const fields = {
        name: name.value.trim(),
        allowed_models: picked.length ? picked : null,
        rpm_limit: number(rpm),
        token_quota: number(quota),
        // An unreadable date goes as typed, so the API's message says what is wrong with it.
        expires_at: expiry ? (Number.isNaN(expiry.getTime()) ? expires.value : expiry.toISOString()) : null,
      };
      if (!token) return fields;
      const before = {
        name: token.name,
        allowed_models: token.allowed_models ? [...token.allowed_models].sort() : null,
        rpm_limit: token.rpm_limit,
        token_quota: token.token_quota,
      };
      const changed = {};
      for (const field of ['name', 'allowed_models', 'rpm_limit', 'token_quota']) {
        const value = field === 'allowed_models' && fields[field] ? [...fields[field]].sort() : fields[field];
        if (JSON.stringify(value) !== JSON.stringify(before[field])) changed[field] = fields[field];
      }
      if (expires.value !== isoToLocal(token.expires_at)) changed.expires_at = fields.expires_at;
      return changed;
    }

    save.addEventListener('click', async () => {
      clearErrors();
      save.disabled = true;
      try {
        const answer = token
          ? await OPX.api('PUT', '/api/tokens/' + token.id, body())
          : await OPX.api('POST', '/api/tokens', body());
        await onSaved(answer);
      } catch (error) {
        showError(error);
      } finally {
        save.disabled = false;
      }
    });
    cancel.addEventListener('click', onCancel);

    return h(
      'div',
      { class: 'card mb-3', id: 'token-form', 'data-mode': token ? 'edit' : 'create' },
      h('div', { class: 'card-header' }, token ? t('tokens.editTitle', { name: token.name }) : t('tokens.createTitle')),
      h(
        'div',
        { class: 'card-body' },
        general,
        h(
          'div',
          { class: 'row g-3' },
          control('name', name),
          control('allowed_models', allowed, t('tokens.allowedModelsHelp')),
          control('rpm_limit', rpm),
          control('token_quota', quota),
          control('expires_at', expires),
        ),
        h('div', { class: 'd-flex gap-2 mt-3' }, save, cancel),
      ),
    );
  }

  function labelKey(field) {
    return {
      name: 'tokens.name',
      allowed_models: 'tokens.allowedModels',
      rpm_limit: 'tokens.rpm',
      token_quota: 'tokens.quota',
      expires_at: 'tokens.expires',
    }[field];
  }

  function statusBadge(token) {
    const status = token.status === 'active' && token.expired ? 'expired' : token.status;
    const colour = status === 'active' ? 'bg-success' : status === 'expired' ? 'bg-warning text-dark' : 'bg-secondary';
    return h('span', { class: 'badge ' + colour, 'data-status': status }, t('tokens.status.' + status));
  }

  function limitsText(token) {
    const parts = [token.allowed_models ? token.allowed_models.join(', ') : t('tokens.anyModel')];
    if (token.rpm_limit != null) parts.push(t('tokens.limitRpm', { n: OPX.fmt.number(token.rpm_limit) }));
    if (token.token_quota != null) {
      parts.push(t('tokens.limitQuota', { used: OPX.fmt.number(token.tokens_used), quota: OPX.fmt.number(token.token_quota) }));
    }
    if (token.expires_at) parts.push(t('tokens.limitExpires', { time: OPX.fmt.time(token.expires_at) }));
    return parts.join(' · ');
  }

  OPX.page('tokens', {
    title: 'tokens.title',
    async render(root) {
      // The page's own box, in root at once: a render overtaken by a newer navigation fills a detached box.
      const view = root.appendChild(h('div'));
      const formSlot = h('div', { id: 'token-form-slot' });
      const listBox = h('div', { id: 'token-list' });
      const createButton = h('button', { id: 'token-create', type: 'button', class: 'btn btn-primary' }, t('tokens.create'));
      const modelNames = (await OPX.api('GET', '/api/models')).map((m) => m.model_name);

      function closeForm() {
        formSlot.replaceChildren();
        createButton.disabled = false;
      }

      function openForm(token) {
        createButton.disabled = true;
        formSlot.replaceChildren(
          tokenForm(
            modelNames,
            token,
            async (saved) => {
              closeForm();
              if (token) OPX.toast(t('tokens.saved', { name: saved.name }), 'success');
              else await showValueOnce(saved.token);
              await load();
            },
            closeForm,
          ),
        );
        formSlot.scrollIntoView({ block: 'nearest' });
      }

      async function revoke(token) {
        if (!(await OPX.confirm(t('tokens.revokeConfirm', { name: token.name })))) return;
        try {
          await OPX.api('DELETE', '/api/tokens/' + token.id);
          OPX.toast(t('tokens.revoked', { name: token.name }), 'success');
        } catch (error) {
          OPX.toast(error.message, 'danger');
        }
        await load();
      }

      function actions(token) {
        if (token.status !== 'active') return '';
        const edit = h('button', { type: 'button', class: 'btn btn-sm btn-outline-secondary', 'data-action': 'edit' }, t('tokens.edit'));
        const revokeButton = h('button', { type: 'button', class: 'btn btn-sm btn-outline-danger', 'data-action': 'revoke' }, t('tokens.revoke'));
        edit.addEventListener('click', () => openForm(token));
        revokeButton.addEventListener('click', () => revoke(token));
        return h('div', { class: 'd-flex gap-1' }, edit, revokeButton);
      }

      async function load() {
        const tokens = await OPX.api('GET', '/api/tokens');
        if (!tokens.length) {
          listBox.replaceChildren(h('p', { class: 'opx-muted' }, t('tokens.empty')));
          return;
        }
        const table = OPX.table(
          [
            { label: t('tokens.col.name'), value: (tok) => tok.name },
            { label: t('tokens.col.token'), value: (tok) => h('code', {}, tok.token_hint) },
            { label: t('tokens.col.status'), value: statusBadge },
            { label: t('tokens.col.limits'), value: limitsText },
            {
              label: t('tokens.col.usage'),
              value: (tok) => t('tokens.usage', { requests: OPX.fmt.number(tok.request_count), tokens: OPX.fmt.number(tok.tokens_used) }),
            },
            { label: t('tokens.col.lastUsed'), value: (tok) => (tok.last_used ? OPX.fmt.relative(tok.last_used) : t('tokens.neverUsed')) },
            { label: t('tokens.col.actions'), value: actions },
          ],
          tokens,
          // Rows carry the token's id and name so tests (and the eye, in the inspector) can find one.
          { rowAttrs: (tok) => ({ 'data-token-id': String(tok.id), 'data-token-name': tok.name }) },
        );
        listBox.replaceChildren(table);
      }

      createButton.addEventListener('click', () => openForm(null));
      view.append(h('div', { class: 'mb-3' }, createButton), formSlot, listBox);
      await load();
    },
  });
})();
