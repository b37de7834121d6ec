// Audit log page: every change made through the admin API (GET /api/audit), newest first, paged, with a
// filter by action.
(function () {
  'use strict';
  const { h, t } = OPX;
  const PAGE = 25;
  // The actions the admin API records; the filter offers these, and the API takes any other name too.
  const ACTIONS = [
    'auth.login', 'key.create', 'key.update', 'key.delete', 'key.import', 'key.test', 'key.test_all',
    'model.create', 'model.update', 'model.enable', 'model.disable', 'model.delete', 'model.refresh',
    'token.create', 'token.update', 'token.revoke', 'settings.update', 'object.revoke', 'object.revoke_key',
    'object.reassign',
  ];

  OPX.messages({
    en: {
      'audit.title': 'Audit log',
      'audit.action': 'Action',
      'audit.anyAction': 'Any action',
      'audit.col.time': 'When',
      'audit.col.actor': 'Who',
      'audit.col.client': 'From',
      'audit.col.action': 'What',
      'audit.col.target': 'Target',
      'audit.col.detail': 'Detail',
      'audit.empty': 'No entry.',
      'audit.total': '{count} entries',
      'audit.do.auth.login': 'Signed in',
      'audit.do.key.create': 'Key added',
      'audit.do.key.update': 'Key changed',
      'audit.do.key.delete': 'Key deleted',
      'audit.do.key.import': 'Keys imported',
      'audit.do.key.test': 'Key tested',
      'audit.do.key.test_all': 'All keys tested',
      'audit.do.model.create': 'Model added',
      'audit.do.model.update': 'Model changed',
      'audit.do.model.enable': 'Model enabled',
      'audit.do.model.disable': 'Model disabled',
      'audit.do.model.delete': 'Model deleted',
      'audit.do.model.refresh': 'Models refreshed',
      'audit.do.token.create': 'Client token created',
      'audit.do.token.update': 'Client token changed',
      'audit.do.token.revoke': 'Client token revoked',
      'audit.do.settings.update': 'Settings changed',
      'audit.do.object.revoke': 'Object record revoked',
      'audit.do.object.revoke_key': "A key's object records revoked",
      'audit.do.object.reassign': "A key's objects reassigned",
    },
    zh: {
      'audit.title': '审计日志',
      'audit.action': '操作',
      'audit.anyAction': '全部操作',
      'audit.col.time': '时间',
      'audit.col.actor': '操作者',
      'audit.col.client': '来源地址',
      'audit.col.action': '操作',
      'audit.col.target': '对象',
      'audit.col.detail': '详情',
      'audit.empty': '没有记录。',
      'audit.total': '共 {count} 条记录',
      'audit.do.auth.login': '登录',
      'audit.do.key.create': '添加密钥',
      'audit.do.key.update': '修改密钥',
      'audit.do.key.delete': '删除密钥',
      'audit.do.key.import': '批量导入密钥',
      'audit.do.key.test': '测试密钥',
      'audit.do.key.test_all': '测试全部密钥',
      'audit.do.model.create': '添加模型',
      'audit.do.model.update': '修改模型',
      'audit.do.model.enable': '启用模型',
      'audit.do.model.disable': '停用模型',
      'audit.do.model.delete': '删除模型',
      'audit.do.model.refresh': '刷新模型列表',
      'audit.do.token.create': '创建客户端令牌',
      'audit.do.token.update': '修改客户端令牌',
      'audit.do.token.revoke': '吊销客户端令牌',
      'audit.do.settings.update': '修改设置',
      'audit.do.object.revoke': '撤销对象记录',
      'audit.do.object.revoke_key': '撤销密钥的全部对象记录',
      'audit.do.object.reassign': '转移密钥的对象',
    },
  });

  /// The detail (a JSON object as text) as `name: value` lines, or the text itself when it is not JSON.
  function detailText(detail) {
    if (!detail) return '';
    try {
      const parsed = JSON.parse(detail);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
        return Object.entries(parsed)
          .map(([name, value]) => `${name}: ${typeof value === 'string' ? value : JSON.stringify(value)}`)
          .join('\n');
      }
    } catch (_) {
      // Not JSON: shown as it is.
    }
    return detail;
  }

  OPX.page('audit', {
    title: 'audit.title',
    async render(root, params) {
      // The page's own box, in root at once: a render overtaken by a newer navigation fills a detached box.
      const view = root.appendChild(h('div'));
      const action = h(
        'select',
        { id: 'audit-action', class: 'form-select form-select-sm w-auto', 'aria-label': t('audit.action') },
        h('option', { value: '' }, t('audit.anyAction')),
        ...ACTIONS.map((name) => h('option', { value: name }, t('audit.do.' + name))),
      );
      action.value = ACTIONS.includes(params.get('action')) ? params.get('action') : '';
      const summary = h('div', { id: 'audit-total', class: 'small opx-muted mb-1' });
      const tableBox = h('div', { id: 'audit-table' });
      const pager = h('div', { id: 'audit-pager' });

      async function load(offset) {
        const query = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
        if (action.value) query.set('action', action.value);
        const page = await OPX.api('GET', '/api/audit?' + query);
        summary.textContent = t('audit.total', { count: OPX.fmt.number(page.total) });
        tableBox.dataset.offset = String(page.offset);
        if (!page.data.length) {
          tableBox.replaceChildren(h('p', { class: 'opx-muted' }, t('audit.empty')));
        } else {
          const table = OPX.table(
            [
              { class: 'opx-nowrap', label: t('audit.col.time'), value: (entry) => OPX.fmt.time(entry.timestamp) },
              { label: t('audit.col.actor'), value: (entry) => entry.actor },
              { label: t('audit.col.client'), value: (entry) => entry.client },
              {
                label: t('audit.col.action'),
                value: (entry) =>
                  h(
                    'div',
                    {},
                    ACTIONS.includes(entry.action) ? t('audit.do.' + entry.action) : '',
                    h('div', {}, h('code', { class: 'small' }, entry.action)),
                  ),
              },
              { label: t('audit.col.target'), value: (entry) => entry.target || '' },
              {
                label: t('audit.col.detail'),
                value: (entry) => {
                  const node = h('div', { class: 'small' }, detailText(entry.detail));
                  node.style.whiteSpace = 'pre-wrap';
                  return node;
                },
              },
            ],
            page.data,
            { rowAttrs: (entry) => ({ 'data-action': entry.action }) },
          );
          tableBox.replaceChildren(table);
        }
        pager.replaceChildren(
          OPX.pager({ offset: page.offset, limit: page.limit, count: page.data.length, total: page.total, onChange: load }),
        );
      }

      action.addEventListener('change', () => {
        location.hash = action.value ? '#/audit?action=' + encodeURIComponent(action.value) : '#/audit';
      });
      view.append(
        h(
          'div',
          { class: 'd-flex flex-wrap align-items-center gap-2 mb-3' },
          h('label', { class: 'form-label mb-0', for: 'audit-action' }, t('audit.action')),
          action,
        ),
        summary,
        tableBox,
        pager,
      );
      await load(0);
    },
  });
})();
