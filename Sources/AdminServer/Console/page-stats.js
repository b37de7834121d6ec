// Statistics page: totals for a period (cached and reasoning tokens, the cache hit rate), charts per key, per
// model and per hour, errors by status, token details per key and per model, and the request log with paging
// and filters.
(function () {
  'use strict';
  const { h, t } = OPX;
  const LOG_PAGE = 25;
  const PERIODS = ['all', 'today', '7d', '30d'];
  // Hours of the per-hour chart for each period (the API gives at most 720).
  const PERIOD_HOURS = { all: 720, today: 24, '7d': 168, '30d': 720 };

  OPX.messages({
    en: {
      'stats.title': 'Statistics',
      'stats.period': 'Period',
      'stats.period.all': 'All time',
      'stats.period.today': 'Today',
      'stats.period.7d': 'Last 7 days',
      'stats.period.30d': 'Last 30 days',
      'stats.requests': 'Requests',
      'stats.successRate': 'Success rate',
      'stats.tokens': 'Tokens',
      'stats.latency': 'Average latency',
      'stats.byKey': 'Requests per key (all time)',
      'stats.byModel': 'Tokens per model (all time)',
      'stats.byHour': 'Requests and tokens per hour',
      'stats.errors': 'Errors by status',
      'stats.errorsNote': 'Counted from the request log, which keeps the last days only.',
      'stats.noErrors': 'No errors in this period.',
      'stats.no_answer': 'no answer',
      'stats.successes': 'Successes',
      'stats.failures': 'Failures',
      'stats.promptTokens': 'Prompt tokens',
      'stats.completionTokens': 'Completion tokens',
      'stats.log': 'Request log',
      'stats.filter.key': 'Key',
      'stats.filter.model': 'Model',
      'stats.filter.token': 'Client token',
      'stats.filter.status': 'Status',
      'stats.filter.from': 'From',
      'stats.filter.to': 'To',
      'stats.filter.any': 'Any',
      'stats.filter.apply': 'Apply',
      'stats.filter.clear': 'Clear',
      'stats.col.time': 'Time',
      'stats.col.key': 'Key',
      'stats.col.model': 'Model',
      'stats.col.token': 'Token',
      'stats.col.status': 'Status',
      'stats.col.latency': 'Latency',
      'stats.col.tokens': 'Tokens',
      'stats.col.path': 'Path',
      'stats.col.error': 'Error',
      'stats.logEmpty': 'No request matches.',
      'stats.logTotal': '{count} requests',
      'stats.consoleToken': 'console chat',
      'stats.cachedTokens': 'Cached prompt tokens',
      'stats.reasoningTokens': 'Reasoning tokens',
      'stats.cacheHitRate': 'Cache hit rate',
      'stats.tokensByKey': 'Token details per key (all time)',
      'stats.tokensByModel': 'Token details per model (all time)',
      'stats.col.name': 'Name',
      'stats.col.prompt': 'Prompt',
      'stats.col.cached': 'Cached',
      'stats.col.hitRate': 'Cache hit rate',
      'stats.col.reasoning': 'Reasoning',
      'stats.col.audio': 'Audio in / out',
      'stats.noTokens': 'No tokens recorded yet.',
    },
    zh: {
      'stats.title': '统计',
      'stats.period': '时间范围',
      'stats.period.all': '全部',
      'stats.period.today': '今天',
      'stats.period.7d': '最近 7 天',
      'stats.period.30d': '最近 30 天',
      'stats.requests': '请求数',
      'stats.successRate': '成功率',
      'stats.tokens': '令牌数',
      'stats.latency': '平均延迟',
      'stats.byKey': '各密钥请求数（全部时间）',
      'stats.byModel': '各模型令牌数（全部时间）',
      'stats.byHour': '每小时请求数与令牌数',
      'stats.errors': '按状态码统计的错误',
      'stats.errorsNote': '根据请求日志统计，日志只保留最近几天。',
      'stats.noErrors': '该时间范围内没有错误。',
      'stats.no_answer': '无应答',
      'stats.successes': '成功',
      'stats.failures': '失败',
      'stats.promptTokens': '提示令牌',
      'stats.completionTokens': '补全令牌',
      'stats.log': '请求日志',
      'stats.filter.key': '密钥',
      'stats.filter.model': '模型',
      'stats.filter.token': '客户端令牌',
      'stats.filter.status': '状态码',
      'stats.filter.from': '开始时间',
      'stats.filter.to': '结束时间',
      'stats.filter.any': '全部',
      'stats.filter.apply': '筛选',
      'stats.filter.clear': '清除',
      'stats.col.time': '时间',
      'stats.col.key': '密钥',
      'stats.col.model': '模型',
      'stats.col.token': '令牌',
      'stats.col.status': '状态码',
      'stats.col.latency': '延迟',
      'stats.col.tokens': '令牌数',
      'stats.col.path': '路径',
      'stats.col.error': '错误',
      'stats.logEmpty': '没有符合条件的请求。',
      'stats.logTotal': '共 {count} 个请求',
      'stats.consoleToken': '控制台对话',
      'stats.cachedTokens': '缓存命中的提示令牌',
      'stats.reasoningTokens': '推理令牌',
      'stats.cacheHitRate': '缓存命中率',
      'stats.tokensByKey': '各密钥令牌明细（全部时间）',
      'stats.tokensByModel': '各模型令牌明细（全部时间）',
      'stats.col.name': '名称',
      'stats.col.prompt': '提示',
      'stats.col.cached': '缓存',
      'stats.col.hitRate': '缓存命中率',
      'stats.col.reasoning': '推理',
      'stats.col.audio': '音频 输入 / 输出',
      'stats.noTokens': '尚无令牌记录。',
    },
  });

  function card(label, value, id) {
    return h(
      'div',
      { class: 'col-6 col-md-3' },
      h(
        'div',
        { class: 'card h-100' },
        h(
          'div',
          { class: 'card-body py-2' },
          h('div', { class: 'small opx-muted' }, label),
          h('div', { class: 'fs-5 fw-semibold', id }, value),
        ),
      ),
    );
  }

  function chartCard(title, id, extra) {
    const canvas = h('canvas', { id, 'aria-label': title, role: 'img' });
    // OPX.chart sizes the chart to its parent: the box gives it its height.
    const body = h('div', { class: 'card-body' }, h('div', { class: 'opx-chart-box' }, canvas));
    if (extra) body.append(extra);
    return { canvas, view: h('div', { class: 'col-lg-6' }, h('div', { class: 'card h-100' }, h('div', { class: 'card-header' }, title), body)) };
  }

  function select(id, label, options) {
    const node = h(
      'select',
      { id, class: 'form-select form-select-sm', 'aria-label': label },
      h('option', { value: '' }, t('stats.filter.any')),
      ...options.map(([value, text]) => h('option', { value: String(value) }, text)),
    );
    return node;
  }

  function labelled(label, control) {
    return h(
      'div',
      { class: 'col-6 col-md-4 col-xl-2' },
      h('label', { class: 'form-label small mb-1', for: control.id }, label),
      control,
    );
  }

  /// ISO text of a `datetime-local` input's value (the browser's local time), or ''.
  function localToISO(value) {
    if (!value) return '';
    const ms = new Date(value).getTime();
    return Number.isNaN(ms) ? '' : new Date(ms).toISOString();
  }

  /// Errors by status over the period (every status outside 2xx), from the request log in one query.
  async function errorCounts(period) {
    const answer = await OPX.api('GET', '/api/stats/statuses?period=' + period);
    return answer.data
      .filter((row) => row.status < 200 || row.status >= 300)
      .map((row) => [row.status > 0 ? String(row.status) : t('stats.no_answer'), row.requests]);
  }

  /// A dataset in the palette's `index`th colour.
  function series(label, data, index, extra) {
    const colour = OPX.chart.colors[index % OPX.chart.colors.length];
    return Object.assign({ label, data, backgroundColor: colour, borderColor: colour }, extra || {});
  }

  /// A cache hit rate (0…1, or null when nothing reported a cached count) as text.
  function hitRate(rate) {
    return rate == null ? '–' : OPX.fmt.percent(rate);
  }

  /// A card with a table of token details, one row per key or model: prompt, cached, hit rate, reasoning, audio.
  function detailsTable(title, id, rows) {
    const number = (value) => OPX.fmt.number(value || 0);
    const table = rows.length
      ? OPX.table(
          [
            { class: 'opx-nowrap', label: t('stats.col.name'), value: (row) => row.name },
            { class: 'text-end', label: t('stats.col.prompt'), value: (row) => number(row.totals.prompt_tokens) },
            { class: 'text-end', label: t('stats.col.cached'), value: (row) => number(row.totals.cached_tokens) },
            { class: 'text-end', label: t('stats.col.hitRate'), value: (row) => hitRate(row.totals.cache_hit_rate) },
            { class: 'text-end', label: t('stats.col.reasoning'), value: (row) => number(row.totals.reasoning_tokens) },
            {
              class: 'text-end opx-nowrap',
              label: t('stats.col.audio'),
              value: (row) => number(row.totals.audio_input_tokens) + ' / ' + number(row.totals.audio_output_tokens),
            },
          ],
          rows,
          { rowAttrs: (row) => ({ dataset: { name: row.name } }) },
        )
      : h('p', { class: 'opx-muted mb-0' }, t('stats.noTokens'));
    return h(
      'div',
      { class: 'col-lg-6' },
      h(
        'div',
        { class: 'card h-100' },
        h('div', { class: 'card-header' }, title),
        h('div', { class: 'card-body', id }, table),
      ),
    );
  }

  /// A short label for an hour: "14:00" within a day, "11-22 14:00" over longer spans.
  function hourLabel(iso, withDay) {
    const date = new Date(iso);
    const pad = (n) => String(n).padStart(2, '0');
    const time = `${pad(date.getHours())}:00`;
    return withDay ? `${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${time}` : time;
  }

  function drawCharts(cards, data) {
    const stacked = { x: { stacked: true }, y: { stacked: true } };
    OPX.chart(cards.byKey.canvas, {
      type: 'bar',
      data: {
        labels: data.keyStats.map((k) => k.name),
        datasets: [
          series(t('stats.successes'), data.keyStats.map((k) => k.successes), 2),
          series(t('stats.failures'), data.keyStats.map((k) => k.failures), 3),
        ],
      },
      options: { indexAxis: 'y', scales: stacked },
    });
    OPX.chart(cards.byModel.canvas, {
      type: 'bar',
      data: {
        labels: data.modelStats.map((m) => m.model_name),
        datasets: [
          series(t('stats.promptTokens'), data.modelStats.map((m) => m.totals.prompt_tokens), 0),
          series(t('stats.completionTokens'), data.modelStats.map((m) => m.totals.completion_tokens), 1),
        ],
      },
      options: { scales: stacked },
    });
    const rows = data.hourly.data;
    OPX.chart(cards.byHour.canvas, {
      type: 'line',
      data: {
        labels: rows.map((row) => hourLabel(row.hour, rows.length > 24)),
        datasets: [
          series(t('stats.requests'), rows.map((row) => row.totals.requests), 0, { yAxisID: 'y' }),
          series(t('stats.tokens'), rows.map((row) => row.totals.total_tokens), 1, { yAxisID: 'y1' }),
        ],
      },
      options: {
        scales: {
          x: {
            ticks: {
              maxTicksLimit: 8,
              maxRotation: 0,
              // Over several days the axis names days; the tooltip keeps the hour.
              callback(value) {
                const label = this.getLabelForValue(value);
                return rows.length > 48 ? label.split(' ')[0] : label;
              },
            },
          },
          y: { beginAtZero: true, ticks: { precision: 0 } },
          y1: { beginAtZero: true, position: 'right', grid: { drawOnChartArea: false } },
        },
        elements: { point: { radius: 0 } },
        interaction: { mode: 'index', intersect: false },
      },
    });
    OPX.chart(cards.byStatus.canvas, {
      type: 'bar',
      data: {
        labels: data.errors.map(([status]) => status),
        datasets: [series(t('stats.requests'), data.errors.map(([, n]) => n), 3)],
      },
      options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
  }

  OPX.page('stats', {
    title: 'stats.title',
    async render(root, params) {
      // The page's own box, in root at once: a render overtaken by a newer navigation fills a detached box.
      const view = root.appendChild(h('div'));
      const period = PERIODS.includes(params.get('period')) ? params.get('period') : 'all';
      const hours = PERIOD_HOURS[period];
      const usageAnswer = OPX.api('GET', '/api/stats/usage?period=' + period);
      const [usage, errors, keyStats, modelStats, hourly, keys, models, tokens] = await Promise.all([
        usageAnswer,
        errorCounts(period),
        OPX.api('GET', '/api/stats/keys'),
        OPX.api('GET', '/api/stats/models'),
        OPX.api('GET', '/api/stats/hourly?hours=' + hours),
        OPX.api('GET', '/api/keys'),
        OPX.api('GET', '/api/models'),
        OPX.api('GET', '/api/tokens'),
      ]);
      const keyNames = new Map(keys.map((k) => [k.id, k.name]));
      const tokenNames = new Map(tokens.map((tok) => [tok.id, tok.name]));

      const periodSelect = h(
        'select',
        { id: 'stats-period', class: 'form-select form-select-sm w-auto', 'aria-label': t('stats.period') },
        ...PERIODS.map((p) => h('option', { value: p }, t('stats.period.' + p))),
      );
      periodSelect.value = period;
      periodSelect.addEventListener('change', () => {
        location.hash = '#/stats?period=' + periodSelect.value;
      });

      const totals = usage.totals;
      const cards = h(
        'div',
        { class: 'row g-2 mb-3' },
        card(t('stats.requests'), OPX.fmt.number(totals.requests), 'stats-requests'),
        card(
          t('stats.successRate'),
          totals.requests ? OPX.fmt.percent(totals.successes / totals.requests) : '–',
          'stats-success',
        ),
        card(t('stats.tokens'), OPX.fmt.number(totals.total_tokens), 'stats-tokens'),
        card(t('stats.latency'), totals.avg_latency_ms == null ? '–' : OPX.fmt.ms(totals.avg_latency_ms), 'stats-latency'),
        card(t('stats.cachedTokens'), OPX.fmt.number(totals.cached_tokens), 'stats-cached'),
        card(t('stats.cacheHitRate'), hitRate(totals.cache_hit_rate), 'stats-cache-hit'),
        card(t('stats.reasoningTokens'), OPX.fmt.number(totals.reasoning_tokens), 'stats-reasoning'),
      );
      const tokensByKey = detailsTable(
        t('stats.tokensByKey'),
        'stats-key-tokens',
        keyStats.map((k) => ({ name: k.name, totals: k })),
      );
      const tokensByModel = detailsTable(
        t('stats.tokensByModel'),
        'stats-model-tokens',
        modelStats.map((m) => ({ name: m.model_name, totals: m.totals })),
      );

      const byKey = chartCard(t('stats.byKey'), 'stats-chart-keys');
      const byModel = chartCard(t('stats.byModel'), 'stats-chart-models');
      const byHour = chartCard(t('stats.byHour'), 'stats-chart-hours');
      const errorNote = h(
        'p',
        { class: 'small opx-muted mt-2 mb-0' },
        errors.length ? t('stats.errorsNote') : t('stats.noErrors') + ' ' + t('stats.errorsNote'),
      );
      const byStatus = chartCard(t('stats.errors'), 'stats-chart-errors', errorNote);

      const log = requestLog(keys, models, tokens, keyNames, tokenNames);
      view.append(
        h(
          'div',
          { class: 'd-flex flex-wrap align-items-center gap-2 mb-3' },
          h('label', { class: 'form-label mb-0', for: 'stats-period' }, t('stats.period')),
          periodSelect,
        ),
        cards,
        h('div', { class: 'row g-3 mb-3' }, byHour.view, byStatus.view, byKey.view, byModel.view),
        h('div', { class: 'row g-3 mb-3' }, tokensByKey, tokensByModel),
        log.view,
      );

      if (!view.isConnected) return; // left while loading: no charts for a page no one sees
      // The router destroys these charts when the page is left.
      drawCharts({ byKey, byModel, byHour, byStatus }, { keyStats, modelStats, hourly, errors });
      await log.load(0);
    },
  });

  /// The request log: filters, a table and a pager.
  function requestLog(keys, models, tokens, keyNames, tokenNames) {
    const key = select('log-key', t('stats.filter.key'), keys.map((k) => [k.id, k.name]));
    const model = select('log-model', t('stats.filter.model'), models.map((m) => [m.model_name, m.model_name]));
    const token = select('log-token', t('stats.filter.token'), tokens.map((tok) => [tok.id, tok.name]));
    const status = h('input', {
      id: 'log-status',
      type: 'number',
      min: '100',
      max: '599',
      class: 'form-control form-control-sm',
      placeholder: '429',
    });
    const from = h('input', { id: 'log-from', type: 'datetime-local', class: 'form-control form-control-sm' });
    const to = h('input', { id: 'log-to', type: 'datetime-local', class: 'form-control form-control-sm' });
    const apply = h('button', { id: 'log-apply', type: 'button', class: 'btn btn-sm btn-primary' }, t('stats.filter.apply'));
    const clear = h('button', { id: 'log-clear', type: 'button', class: 'btn btn-sm btn-outline-secondary' }, t('stats.filter.clear'));
    const errorBox = h('div', { id: 'log-error', class: 'alert alert-danger py-1 px-2 small d-none' });
    const summary = h('div', { id: 'log-total', class: 'small opx-muted mb-1' });
    const tableBox = h('div', { id: 'log-table' });
    const pager = h('div', { id: 'log-pager' });

    // A token /api/tokens does not list is the admin server's own, the one the chat page uses.
    const tokenLabel = (row) =>
      row.token_id == null ? '–' : tokenNames.get(row.token_id) || t('stats.consoleToken');

    function query(offset) {
      const q = new URLSearchParams({ limit: String(LOG_PAGE), offset: String(offset) });
      const put = (name, value) => value && q.set(name, value);
      put('key_id', key.value);
      put('model', model.value);
      put('token_id', token.value);
      put('status', status.value.trim());
      put('from', localToISO(from.value));
      put('to', localToISO(to.value));
      return q;
    }

    async function load(offset) {
      let page;
      try {
        page = await OPX.api('GET', '/api/usage?' + query(offset));
      } catch (error) {
        errorBox.textContent = error.message;
        errorBox.classList.remove('d-none');
        return;
      }
      errorBox.classList.add('d-none');
      summary.textContent = t('stats.logTotal', { count: OPX.fmt.number(page.total) });
      tableBox.dataset.offset = String(page.offset);
      tableBox.replaceChildren(
        page.data.length
          ? OPX.table(
              [
                { class: 'opx-nowrap', label: t('stats.col.time'), value: (row) => OPX.fmt.time(row.timestamp) },
                { class: 'opx-nowrap', label: t('stats.col.key'), value: (row) => (row.key_id == null ? '–' : keyNames.get(row.key_id) || '#' + row.key_id) },
                { class: 'opx-nowrap', label: t('stats.col.model'), value: (row) => row.model || '–' },
                { class: 'opx-nowrap', label: t('stats.col.token'), value: tokenLabel },
                { class: 'opx-nowrap', label: t('stats.col.status'), value: (row) => String(row.status) },
                { class: 'opx-nowrap', label: t('stats.col.latency'), value: (row) => OPX.fmt.ms(row.latency_ms) },
                { class: 'opx-nowrap', label: t('stats.col.tokens'), value: (row) => (row.total_tokens == null ? '–' : OPX.fmt.number(row.total_tokens)) },
                { class: 'opx-nowrap', label: t('stats.col.cached'), value: (row) => (row.cached_tokens == null ? '–' : OPX.fmt.number(row.cached_tokens)) },
                { class: 'opx-nowrap', label: t('stats.col.reasoning'), value: (row) => (row.reasoning_tokens == null ? '–' : OPX.fmt.number(row.reasoning_tokens)) },
                { class: 'opx-nowrap', label: t('stats.col.path'), value: (row) => row.method + ' ' + row.path },
                { label: t('stats.col.error'), value: (row) => row.error || '' },
              ],
              page.data,
            )
          : h('p', { class: 'opx-muted' }, t('stats.logEmpty')),
      );
      pager.replaceChildren(
        OPX.pager({ offset: page.offset, limit: page.limit, count: page.data.length, total: page.total, onChange: load }),
      );
    }

    apply.addEventListener('click', () => load(0));
    clear.addEventListener('click', () => {
      [key, model, token, status, from, to].forEach((control) => (control.value = ''));
      load(0);
    });

    const view = h(
      'div',
      { class: 'card' },
      h('div', { class: 'card-header' }, t('stats.log')),
      h(
        'div',
        { class: 'card-body' },
        h(
          'div',
          { class: 'row g-2 align-items-end mb-2' },
          labelled(t('stats.filter.key'), key),
          labelled(t('stats.filter.model'), model),
          labelled(t('stats.filter.token'), token),
          labelled(t('stats.filter.status'), status),
          labelled(t('stats.filter.from'), from),
          labelled(t('stats.filter.to'), to),
          h('div', { class: 'col-12 d-flex gap-2' }, apply, clear),
        ),
        errorBox,
        summary,
        tableBox,
        pager,
      ),
    );
    return { view, load };
  }
})();
