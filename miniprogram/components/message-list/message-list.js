// The conversation as plain text bubbles; the reply being written is the last bubble.
// Text goes through {{ }} data binding, which never interprets markup: no rich-text, so
// whatever the model writes is shown as characters, not as HTML.
//
// The stored messages come in as a property (they change when a message is added); the
// live reply comes through setLive(), which changes only the paths that changed
// ('rows[i].content'), so a growing reply never sends the whole list to the view again.
// Every reply carries an "AI生成" mark; a long press offers 复制 and, on stored replies, 举报.

const ENDINGS = {
  assistant: {
    stopped: '已停止',
    interrupted: '已中断',
    failed: '未能回复',
    blocked: '该回复因内容安全原因已被移除',
  },
  user: {
    blocked: '未发送：内容不符合规范',
  },
};

function noteOf(role, status) {
  return (ENDINGS[role] && ENDINGS[role][status]) || '';
}

function liveNote(reply) {
  if (reply.status === 'sending') return '发送中…';
  if (reply.status === 'queued') return `排队中，前面还有 ${reply.queuePosition} 位`;
  return '';
}

function liveRow(reply) {
  return {
    key: 'live',
    role: 'assistant',
    content: reply.text,
    note: liveNote(reply),
    live: true,
    streaming: reply.status === 'streaming',
  };
}

Component({
  properties: {
    // [{key, id?, role: 'user' | 'assistant', content, status}]
    messages: { type: Array, value: [] },
  },
  data: {
    rows: [],
  },
  observers: {
    messages(messages) {
      const rows = messages.map((m) => ({ ...m, note: noteOf(m.role, m.status) }));
      if (this.live) rows.push(liveRow(this.live));
      this.setData({ rows });
    },
  },
  methods: {
    /** Show the reply in flight (null: none); only what changed is set. */
    setLive(reply) {
      const at = this.data.rows.length - 1;
      const shown = this.live ? this.data.rows[at] : null;
      this.live = reply;
      if (!reply) {
        if (shown) this.setData({ rows: this.data.rows.slice(0, at) });
        return;
      }
      const row = liveRow(reply);
      if (!shown) {
        this.setData({ [`rows[${at + 1}]`]: row });
        return;
      }
      const changes = {};
      ['content', 'note', 'streaming'].forEach((field) => {
        if (shown[field] !== row[field]) changes[`rows[${at}].${field}`] = row[field];
      });
      if (Object.keys(changes).length) this.setData(changes);
    },

    onLongPress(e) {
      const row = this.data.rows[e.currentTarget.dataset.index];
      if (!row) return;
      const reportable = row.role === 'assistant' && !!row.id && row.status !== 'blocked';
      const actions = reportable ? ['复制', '举报'] : ['复制'];
      wx.showActionSheet({
        itemList: actions,
        success: ({ tapIndex }) => {
          if (actions[tapIndex] === '复制') wx.setClipboardData({ data: row.content });
          else this.triggerEvent('report', { messageId: row.id });
        },
      });
    },
  },
});
