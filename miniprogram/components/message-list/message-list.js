// The conversation as plain text bubbles; the reply being written is the last bubble.
// Text goes through {{ }} data binding, which never interprets markup: no rich-text, so
// whatever the model writes is shown as characters, not as HTML.

const ENDINGS = {
  stopped: '已停止',
  interrupted: '已中断',
  failed: '未能回复',
};

function replyNote(reply) {
  if (!reply) return '';
  if (reply.status === 'sending') return '发送中…';
  if (reply.status === 'queued') return `排队中，前面还有 ${reply.queuePosition} 位`;
  return '';
}

Component({
  properties: {
    // [{key, role: 'user' | 'assistant', content, status}]
    messages: { type: Array, value: [] },
    // the chat client's reply in flight, or null
    reply: { type: Object, value: null },
  },
  data: {
    rows: [],
    replyNote: '',
  },
  observers: {
    messages(messages) {
      this.setData({
        rows: messages.map((m) => ({ ...m, note: ENDINGS[m.status] || '' })),
      });
    },
    reply(reply) {
      this.setData({ replyNote: replyNote(reply) });
    },
  },
});
