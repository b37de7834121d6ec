// Settings page: the rotation strategy and the other settings a running service takes live
// (GET/PUT /api/settings). A value set here overrides the configuration's; "reset" returns to it.
(function () {
  'use strict';
  const { h, t } = OPX;
  const STRATEGIES = ['round_robin', 'random', 'least_used'];
  const NUMBERS = ['max_body_bytes', 'upstream_connect_timeout_seconds', 'first_byte_timeout_seconds'];
  const FIELDS = ['rotation_strategy', ...NUMBERS];

  OPX.messages({
    en: {
      'settings.title': 'Settings',
      'settings.intro': 'These settings apply to every worker within a second, for requests that begin after the change.',
      'settings.rotation_strategy': 'Key rotation strategy',
      'settings.rotation_strategy.help': 'How the next upstream key is picked.',
      'settings.strategy.round_robin': 'Round robin — keys in strict turn',
      'settings.strategy.random': 'Random — any active key',
      'settings.strategy.least_used': 'Least used — the key picked least so far',
      'settings.max_body_bytes': 'Largest request body (bytes)',
      'settings.max_body_bytes.help': 'From 1024 to 2147483648.',
      'settings.upstream_connect_timeout_seconds': 'Upstream connect timeout (seconds)',
      'settings.upstream_connect_timeout_seconds.help': 'From 1 to 60.',
      'settings.first_byte_timeout_seconds': 'First byte timeout (seconds)',
      'settings.first_byte_timeout_seconds.help': 'From 1 to 3600: how long to wait for the upstream to start answering.',
      'settings.overridden': 'set here',
      'settings.fromConfig': 'from the configuration',
      'settings.reset': 'Reset to configuration',
      'settings.save': 'Save',
      'settings.saved': 'Settings saved.',
      'settings.unchanged': 'Nothing changed.',
    },
    zh: {
      'settings.title': '设置',
      'settings.intro': '这些设置会在一秒内应用到所有工作进程，对修改之后开始的请求生效。',
      'settings.rotation_strategy': '密钥轮换策略',
      'settings.rotation_strategy.help': '如何选择下一个上游密钥。',
      'settings.strategy.round_robin': '轮询——按顺序依次使用密钥',
      'settings.strategy.random': '随机——任选一个可用密钥',
      'settings.strategy.least_used': '最少使用——选择迄今使用次数最少的密钥',
      'settings.max_body_bytes': '请求体上限（字节）',
      'settings.max_body_bytes.help': '取值 1024 至 2147483648。',
      'settings.upstream_connect_timeout_seconds': '上游连接超时（秒）',
      'settings.upstream_connect_timeout_seconds.help': '取值 1 至 60。',
      'settings.first_byte_timeout_seconds': '首字节超时（秒）',
      'settings.first_byte_timeout_seconds.help': '取值 1 至 3600：等待上游开始响应的最长时间。',
      'settings.overridden': '已在此设置',
      'settings.fromConfig': '来自配置文件',
      'settings.reset': '恢复为配置值',
      'settings.save': '保存',
      'settings.saved': '设置已保存。',
      'settings.unchanged': '没有任何修改。',
    },
  });

  OPX.page('settings', {
    title: 'settings.title',
    async render(root) {
      // The page's own box, in root at once: a render overtaken by a newer navigation fills a detached box.
      const view = root.appendChild(h('div'));
      const controls = {};
      const feedback = {};
      const badges = {};
      const resets = {};
      const general = h('div', { id: 'settings-error', class: 'alert alert-danger d-none' });
      const save = h('button', { id: 'settings-save', type: 'button', class: 'btn btn-primary' }, t('settings.save'));
      let current = await OPX.api('GET', '/api/settings');

      controls.rotation_strategy = h(
        'select',
        { id: 'setting-rotation_strategy', class: 'form-select' },
        ...STRATEGIES.map((s) => h('option', { value: s }, t('settings.strategy.' + s))),
      );
      NUMBERS.forEach((field) => {
        controls[field] = h('input', { id: 'setting-' + field, type: 'text', inputmode: 'numeric', class: 'form-control' });
      });

      /// Shows `settings` (an API answer) in the form.
      function fill(settings) {
        current = settings;
        FIELDS.forEach((field) => {
          controls[field].value = String(settings[field]);
          const overridden = settings.overridden.includes(field);
          badges[field].textContent = t(overridden ? 'settings.overridden' : 'settings.fromConfig');
          badges[field].className = 'badge ms-2 ' + (overridden ? 'bg-primary' : 'bg-secondary');
          resets[field].disabled = !overridden;
        });
      }

      // Validation messages next to the field the API names.
      const { clear: clearErrors, show: showError } = OPX.formErrors(controls, feedback, general);

      async function put(body) {
        clearErrors();
        if (!Object.keys(body).length) {
          OPX.toast(t('settings.unchanged'), 'info');
          return;
        }
        save.disabled = true;
        try {
          fill(await OPX.api('PUT', '/api/settings', body));
          OPX.toast(t('settings.saved'), 'success');
        } catch (error) {
          showError(error);
        } finally {
          save.disabled = false;
        }
      }

      function row(field) {
        feedback[field] = h('div', { class: 'invalid-feedback', id: `setting-${field}-error` });
        badges[field] = h('span', { id: `setting-${field}-source` });
        resets[field] = h('button', { type: 'button', class: 'btn btn-link btn-sm p-0', 'data-reset': field }, t('settings.reset'));
        // The API takes numbers as text too and says what is wrong with one; so the text goes as typed.
        resets[field].addEventListener('click', () => put({ [field]: null }));
        return h(
          'div',
          { class: 'mb-3' },
          h('label', { class: 'form-label', for: controls[field].id }, t('settings.' + field), badges[field]),
          controls[field],
          feedback[field],
          h('div', { class: 'form-text d-flex flex-wrap gap-2' }, h('span', {}, t(`settings.${field}.help`)), resets[field]),
        );
      }

      save.addEventListener('click', () => {
        const body = {};
        FIELDS.forEach((field) => {
          const value = controls[field].value.trim();
          if (value !== String(current[field])) body[field] = value;
        });
        put(body);
      });

      view.append(
        h(
          'div',
          { class: 'card', id: 'settings-form' },
          h(
            'div',
            { class: 'card-body' },
            h('p', { class: 'opx-muted' }, t('settings.intro')),
            general,
            ...FIELDS.map(row),
            save,
          ),
        ),
      );
      fill(current);
    },
  });
})();
