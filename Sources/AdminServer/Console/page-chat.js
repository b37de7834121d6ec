// Chat page: talk to a model through the proxy (POST /api/chat, streamed), stop an answer, reopen a past
// conversation (GET /api/chat/history[/{id}]) and see which upstream key served the answer.
// Every text from a model or a user goes into the page as a text node (OPX.h / textContent), never as HTML.
(function () {
  'use strict';
  const { h, t } = OPX;
  // The history shows 10 conversations at a time; it reads the API's list 100 rows at a time, because it
  // also holds the proxied requests of clients, which are left out unless their texts were kept.
  const HISTORY_SHOWN = 10;
  const HISTORY_BATCH = 100;

  OPX.messages({
    en: {
      'chat.title': 'Chat',
      'chat.model': 'Model',
      'chat.noModels': 'No enabled model. Refresh or enable models on the Models page.',
      'chat.new': 'New conversation',
      'chat.placeholder': 'Write a message… (Ctrl+Enter sends)',
      'chat.send': 'Send',
      'chat.stop': 'Stop',
      'chat.you': 'You',
      'chat.assistant': 'Assistant',
      'chat.system': 'System',
      'chat.empty': 'Start a conversation: pick a model and write a message.',
      'chat.stopped': 'Stopped.',
      'chat.servedBy': 'Served by key {name} (#{id})',
      'chat.servedByUnknown': 'The serving key is not known.',
      'chat.servedById': 'Served by key #{id}',
      'chat.history': 'History',
      'chat.historyEmpty': 'No conversation yet.',
      'chat.noText': '(no text kept)',
      'chat.reopened': 'Conversation #{id} from {time}',
      'chat.keyShort': 'key #{id}',
      'chat.more': 'More',
      'chat.withoutText': 'Show requests without text',
    },
    zh: {
      'chat.title': '对话',
      'chat.model': '模型',
      'chat.noModels': '没有已启用的模型。请到“模型”页面刷新或启用模型。',
      'chat.new': '新对话',
      'chat.placeholder': '输入消息……（Ctrl+Enter 发送）',
      'chat.send': '发送',
      'chat.stop': '停止',
      'chat.you': '你',
      'chat.assistant': '助手',
      'chat.system': '系统',
      'chat.empty': '选择一个模型，输入消息，开始对话。',
      'chat.stopped': '已停止。',
      'chat.servedBy': '由密钥 {name}（#{id}）提供服务',
      'chat.servedByUnknown': '无法确定提供服务的密钥。',
      'chat.servedById': '由密钥 #{id} 提供服务',
      'chat.history': '历史记录',
      'chat.historyEmpty': '还没有对话。',
      'chat.noText': '（未保存文本）',
      'chat.reopened': '对话 #{id}，时间 {time}',
      'chat.keyShort': '密钥 #{id}',
      'chat.more': '更多',
      'chat.withoutText': '显示未保存文本的请求',
    },
  });

  /// The parsed messages of a stored conversation's `request` (a JSON array), or [] when not readable.
  function storedMessages(conversation) {
    if (!conversation.request) return [];
    try {
      const parsed = JSON.parse(conversation.request);
      return Array.isArray(parsed)
        ? parsed.filter((m) => m && typeof m.role === 'string' && typeof m.content === 'string')
        : [];
    } catch (_) {
      return [];
    }
  }

  /// The last user message of a stored conversation, for the history list.
  function lastUserText(conversation) {
    const users = storedMessages(conversation).filter((m) => m.role === 'user');
    return users.length ? users[users.length - 1].content : '';
  }

  function roleLabel(role) {
    return t(role === 'user' ? 'chat.you' : role === 'system' ? 'chat.system' : 'chat.assistant');
  }

  /// One message bubble; `text` is the node the answer's pieces are appended to while streaming.
  function messageView(role, content) {
    const text = h('div', { class: 'opx-msg-text' }, content);
    // pre-wrap keeps the model's line breaks while the text stays a plain text node.
    text.style.whiteSpace = 'pre-wrap';
    text.style.overflowWrap = 'anywhere';
    const view = h(
      'div',
      { class: 'opx-msg mb-2 p-2 rounded border ' + (role === 'user' ? 'bg-primary bg-opacity-10' : ''), 'data-role': role },
      h('div', { class: 'small fw-semibold opx-muted' }, roleLabel(role)),
      text,
    );
    return { view, text };
  }

  /// The key `id` that served an answer, with its current name (null when it was removed meanwhile).
  async function servingKey(id) {
    const key = await OPX.api('GET', '/api/keys/' + id).catch(() => null);
    return { id, name: key ? key.name : null };
  }

  OPX.page('chat', {
    title: 'chat.title',
    async render(root, params) {
      // The page's own box, in root at once: a render overtaken by a newer navigation fills a detached box.
      const view = root.appendChild(h('div'));
      const state = { messages: [], controller: null };
      const models = await OPX.api('GET', '/api/models');
      const enabled = models.filter((m) => m.enabled).map((m) => m.model_name);

      const modelSelect = h(
        'select',
        { id: 'chat-model', class: 'form-select form-select-sm', 'aria-label': t('chat.model') },
        ...enabled.map((name) => h('option', { value: name }, name)),
      );
      const remembered = localStorage.getItem('opx.chat.model');
      if (remembered && enabled.includes(remembered)) modelSelect.value = remembered;
      modelSelect.addEventListener('change', () => localStorage.setItem('opx.chat.model', modelSelect.value));

      const log = h('div', { id: 'chat-messages', class: 'mb-2', 'data-state': 'idle' });
      const served = h('div', { id: 'chat-served', class: 'small opx-muted mb-2' });
      const errorBox = h('div', { id: 'chat-error', class: 'alert alert-danger d-none', role: 'alert' });
      const input = h('textarea', {
        id: 'chat-input',
        class: 'form-control',
        rows: '3',
        placeholder: t('chat.placeholder'),
        'aria-label': t('chat.placeholder'),
      });
      const sendButton = h('button', { id: 'chat-send', type: 'button', class: 'btn btn-primary' }, t('chat.send'));
      const stopButton = h(
        'button',
        { id: 'chat-stop', type: 'button', class: 'btn btn-outline-danger', disabled: true },
        t('chat.stop'),
      );
      const newButton = h(
        'button',
        { id: 'chat-new', type: 'button', class: 'btn btn-sm btn-outline-secondary' },
        t('chat.new'),
      );
      const historyList = h('div', { id: 'chat-history', class: 'list-group list-group-flush' });
      const history = { offset: 0 };
      const moreButton = h('button', { id: 'chat-history-more', type: 'button', class: 'btn btn-sm btn-outline-secondary' }, t('chat.more'));
      const withoutText = h('input', { id: 'chat-history-all', type: 'checkbox', class: 'form-check-input' });
      withoutText.checked = localStorage.getItem('opx.chat.withoutText') === '1';
      withoutText.addEventListener('change', () => {
        localStorage.setItem('opx.chat.withoutText', withoutText.checked ? '1' : '0');
        loadHistory(false);
      });
      moreButton.addEventListener('click', () => loadHistory(true));

      function showEmpty() {
        log.replaceChildren(h('p', { class: 'opx-muted', id: 'chat-empty' }, t('chat.empty')));
      }

      function showError(message) {
        errorBox.textContent = message;
        errorBox.classList.toggle('d-none', !message);
      }

      function setBusy(busy) {
        sendButton.disabled = busy || !enabled.length;
        stopButton.disabled = !busy;
        modelSelect.disabled = busy;
        newButton.disabled = busy;
      }

      /// Shows which key served the answer: `key` is {id, name}; the name is null when not known (yet) or
      /// when the key was removed since.
      function showServed(key) {
        const known = key && key.id != null;
        served.dataset.keyId = known ? String(key.id) : '';
        if (!known) served.textContent = t('chat.servedByUnknown');
        else if (key.name) served.textContent = t('chat.servedBy', { name: key.name, id: key.id });
        else served.textContent = t('chat.servedById', { id: key.id });
      }

      async function send() {
        const content = input.value.trim();
        if (!content || state.controller) return;
        showError('');
        if (!state.messages.length) log.replaceChildren();
        state.messages.push({ role: 'user', content });
        log.append(messageView('user', content).view);
        input.value = '';
        const answer = messageView('assistant', '');
        log.append(answer.view);
        const model = modelSelect.value;
        state.controller = new AbortController();
        served.textContent = '';
        log.dataset.state = 'streaming';
        setBusy(true);
        let text = '';
        let servedKeyID = null;
        try {
          await OPX.stream(
            '/api/chat',
            { model, messages: state.messages, stream: true },
            {
              signal: state.controller.signal,
              // The admin server names the serving key in a header (read when OPX.stream passes the answer on).
              onResponse(response) {
                servedKeyID = response.headers.get('X-OpenAI-Proxy-Key-Id');
              },
              onEvent(event) {
                if (event && event.error) throw Object.assign(new Error(event.error.message || 'error'), event.error);
                const piece = event && event.choices && event.choices[0] && event.choices[0].delta;
                if (piece && typeof piece.content === 'string' && piece.content) {
                  text += piece.content;
                  // A text node append: whatever the model sends stays text.
                  answer.text.append(piece.content);
                  answer.view.scrollIntoView({ block: 'end' });
                }
              },
            },
          );
          log.dataset.state = 'done';
        } catch (error) {
          if (error && error.name === 'AbortError') {
            answer.view.append(h('div', { class: 'small opx-muted fst-italic', 'data-stopped': '1' }, t('chat.stopped')));
            log.dataset.state = 'stopped';
          } else {
            showError(error && error.message ? error.message : String(error));
            log.dataset.state = 'error';
          }
        } finally {
          state.controller = null;
          setBusy(false);
        }
        if (text) state.messages.push({ role: 'assistant', content: text });
        else if (log.dataset.state === 'error') {
          // Nothing came back: take the question out so it can be sent again.
          state.messages.pop();
          answer.view.remove();
        }
        if (log.dataset.state === 'done') {
          // The admin server names the serving key in the answer's header; its name comes from the key itself.
          showServed(servedKeyID ? await servingKey(Number(servedKeyID)) : null);
          loadHistory(false);
        }
      }

      /// Fills the history list from the start, or (`more`) adds the next conversations to it.
      async function loadHistory(more) {
        if (!more) {
          history.offset = 0;
          historyList.replaceChildren();
        }
        let shown = 0;
        let total = 0;
        // At most 5 reads per click, so a long run of textless client requests cannot hold the page.
        for (let reads = 0; reads < 5 && shown < HISTORY_SHOWN; reads++) {
          const page = await OPX.api('GET', `/api/chat/history?limit=${HISTORY_BATCH}&offset=${history.offset}`);
          total = page.total;
          const wanted = page.data.filter((c) => withoutText.checked || c.request != null);
          const taken = wanted.slice(0, HISTORY_SHOWN - shown);
          historyList.append(...taken.map(historyItem));
          shown += taken.length;
          // Resume after the last row shown (or after the whole page when it was all used or skipped).
          const last = taken.length < wanted.length ? page.data.indexOf(taken[taken.length - 1]) + 1 : page.data.length;
          history.offset += last;
          if (history.offset >= total || !page.data.length) break;
        }
        if (!historyList.children.length) {
          historyList.append(h('p', { class: 'opx-muted small p-2', id: 'chat-history-empty' }, t('chat.historyEmpty')));
        }
        moreButton.classList.toggle('d-none', history.offset >= total);
      }

      function historyItem(conversation) {
        const snippet = lastUserText(conversation) || t('chat.noText');
        const meta = [OPX.fmt.time(conversation.timestamp), conversation.model || ''];
        if (conversation.key_id != null) {
          meta.push(conversation.key_name || t('chat.keyShort', { id: conversation.key_id }));
        }
        return h(
          'a',
          {
            class: 'list-group-item list-group-item-action small',
            href: '#/chat?id=' + conversation.id,
            'data-id': String(conversation.id),
          },
          h('div', { class: 'text-truncate' }, snippet),
          h('div', { class: 'opx-muted' }, meta.filter(Boolean).join(' · ')),
        );
      }

      /// Shows a stored conversation and continues it from there.
      async function reopen(id) {
        const conversation = await OPX.api('GET', '/api/chat/history/' + encodeURIComponent(id));
        state.messages = storedMessages(conversation);
        if (conversation.response) state.messages.push({ role: 'assistant', content: conversation.response });
        if (conversation.model && enabled.includes(conversation.model)) modelSelect.value = conversation.model;
        log.replaceChildren(
          h(
            'p',
            { class: 'small opx-muted', id: 'chat-reopened', 'data-id': String(conversation.id) },
            t('chat.reopened', { id: conversation.id, time: OPX.fmt.time(conversation.timestamp) }),
          ),
          ...state.messages.map((m) => messageView(m.role, m.content).view),
        );
        if (!state.messages.length) log.append(h('p', { class: 'opx-muted' }, t('chat.noText')));
        log.dataset.state = 'reopened';
        showServed({ id: conversation.key_id, name: conversation.key_name });
      }

      sendButton.addEventListener('click', send);
      stopButton.addEventListener('click', () => state.controller && state.controller.abort());
      input.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
          event.preventDefault();
          send();
        }
      });
      newButton.addEventListener('click', () => {
        state.messages = [];
        served.textContent = '';
        showError('');
        log.dataset.state = 'idle';
        if (params.get('id')) location.hash = '#/chat';
        else showEmpty();
      });

      view.append(
        h(
          'div',
          { class: 'row g-3' },
          h(
            'div',
            { class: 'col-lg-8' },
            h(
              'div',
              { class: 'd-flex flex-wrap gap-2 align-items-center mb-2' },
              h('label', { class: 'form-label mb-0', for: 'chat-model' }, t('chat.model')),
              h('div', { class: 'flex-grow-1' }, modelSelect),
              newButton,
            ),
            enabled.length ? '' : h('div', { class: 'alert alert-warning', id: 'chat-no-models' }, t('chat.noModels')),
            log,
            served,
            errorBox,
            input,
            h('div', { class: 'd-flex gap-2 mt-2' }, sendButton, stopButton),
          ),
          h(
            'div',
            { class: 'col-lg-4' },
            h(
              'div',
              { class: 'card' },
              h('div', { class: 'card-header' }, t('chat.history')),
              historyList,
              h(
                'div',
                { class: 'card-body py-2 d-flex flex-wrap gap-2 align-items-center justify-content-between' },
                h(
                  'div',
                  { class: 'form-check small mb-0' },
                  withoutText,
                  h('label', { class: 'form-check-label', for: 'chat-history-all' }, t('chat.withoutText')),
                ),
                moreButton,
              ),
            ),
          ),
        ),
      );
      setBusy(false);
      showEmpty();
      await loadHistory(false);
      if (params.get('id')) await reopen(params.get('id'));
      return () => state.controller && state.controller.abort();
    },
  });
})();
