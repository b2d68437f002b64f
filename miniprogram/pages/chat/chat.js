// The chat page: renders the app's chat client (utils/chat-client.js) and the stored
// messages of the open conversation.
const { errorWords } = require('../../utils/errors');

const NEW_TITLE = '新对话';
const PAGE_SIZE = 30;
// scroll-top only scrolls when its value changes: alternate between two "very far down"s.
const BOTTOM = 1000000;

function row(message) {
  return { key: `m${message.id}`, id: message.id, role: message.role, content: message.content, status: message.status };
}

Page({
  data: {
    loggedIn: false,
    conversationId: null,
    title: NEW_TITLE,
    messages: [],
    hasOlder: false,
    reply: null,
    connection: 'closed',
    retry: null,
    quota: null,
    free: null,
    error: '',
    scrollTop: BOTTOM,
  },

  onLoad() {
    const app = getApp();
    this.chat = app.chat;
    this.api = app.api;
    // The client_msg_id asked from this view; a reply to another conversation (left
    // while it streamed) goes on in the background without showing here.
    this.askedHere = null;
    this.unsubscribe = [
      this.chat.on('state', (state) => this.showState(state)),
      this.chat.on('reply-end', (reply) => this.onReplyEnd(reply)),
    ];
    this.showState(this.chat.state);
  },

  onUnload() {
    this.unsubscribe.forEach((off) => off());
  },

  onShow() {
    const app = getApp();
    this.setData({ loggedIn: !!this.api.token });
    const opened = app.globalData.openConversation;
    if (opened !== null) {
      app.globalData.openConversation = null;
      this.openConversation(opened.id, opened.title);
    }
  },

  showState(state) {
    const reply = state.reply && state.reply.clientMsgId === this.askedHere ? state.reply : null;
    const changes = {
      reply,
      connection: state.connection,
      retry: state.retry,
      quota: state.quota,
      free: state.free,
      error: state.error ? state.error.words : '',
    };
    if (reply) {
      changes.scrollTop = this.data.scrollTop === BOTTOM ? BOTTOM + 1 : BOTTOM;
      // A new conversation gets its id with the reply's `start`.
      if (reply.conversationId && this.data.conversationId === null) {
        changes.conversationId = reply.conversationId;
        changes.title = reply.content.slice(0, 20);
      }
    }
    this.setData(changes);
  },

  async openConversation(id, title) {
    this.askedHere = null;
    this.setData({ conversationId: id, title, messages: [], hasOlder: false, reply: null });
    await this.loadMessages(null);
  },

  async loadMessages(before) {
    try {
      const page = await this.api.messages(this.data.conversationId, before, PAGE_SIZE);
      this.setData({
        messages: page.items.map(row).concat(before ? this.data.messages : []),
        hasOlder: page.has_more,
      });
    } catch (e) {
      this.setData({ error: errorWords(e.code, e.message) });
    }
  },

  onLoadOlder() {
    const oldest = this.data.messages.find((m) => m.id);
    if (this.data.hasOlder && oldest) this.loadMessages(oldest.id);
  },

  onNewConversation() {
    this.askedHere = null;
    this.setData({ conversationId: null, title: NEW_TITLE, messages: [], hasOlder: false, reply: null });
  },

  onSend(e) {
    const content = e.detail.content;
    const clientMsgId = this.chat.send(content, this.data.conversationId);
    if (!clientMsgId) return;
    this.askedHere = clientMsgId;
    this.setData({
      messages: this.data.messages.concat({ key: `c${clientMsgId}`, role: 'user', content, status: 'complete' }),
    });
    this.showState(this.chat.state);
  },

  onStop() {
    this.chat.stop();
  },

  onReplyEnd(reply) {
    // A question refused before any answer (too long, no quota) has its words in the
    // status line; an empty bubble would say nothing more.
    if (reply.clientMsgId !== this.askedHere || (reply.status === 'failed' && !reply.text)) return;
    const ended = { key: `r${reply.clientMsgId}`, role: 'assistant', content: reply.text, status: reply.status };
    this.setData({ messages: this.data.messages.concat(ended) });
  },
});
