// The chat page: renders the app's chat client (utils/chat-client.js) and the stored
// messages of the open conversation.
const { errorWords } = require('../../utils/errors');
const { throttle } = require('../../utils/throttle');

const NEW_TITLE = '新对话';
const PAGE_SIZE = 30;
// scroll-top only scrolls when its value changes: alternate between two "very far down"s.
const BOTTOM = 1000000;
// Live typing is applied at most this often (WeChat's guide: few, small setData calls).
const LIVE_MS = 100;

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
    replying: false,
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
    this.showLive = throttle((reply) => this.list().setLive(reply), LIVE_MS);
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

  list() {
    return this.selectComponent('#list');
  },

  /** Only what changed goes to setData; the live text goes to the list, throttled. */
  showState(state) {
    const reply = state.reply && state.reply.clientMsgId === this.askedHere ? state.reply : null;
    const wanted = {
      replying: !!reply,
      connection: state.connection,
      retry: state.retry,
      quota: state.quota,
      free: state.free,
      error: state.error ? state.error.words : '',
    };
    const changes = {};
    Object.keys(wanted).forEach((key) => {
      if (this.data[key] !== wanted[key]) changes[key] = wanted[key];
    });
    if (reply) {
      // A new conversation gets its id with the reply's `start`.
      if (reply.conversationId && this.data.conversationId === null) {
        changes.conversationId = reply.conversationId;
        changes.title = reply.content.slice(0, 20);
      }
      if (reply.text !== this.shownText) {
        this.shownText = reply.text;
        changes.scrollTop = this.data.scrollTop === BOTTOM ? BOTTOM + 1 : BOTTOM;
      }
    }
    if (Object.keys(changes).length) this.setData(changes);
    if (reply) {
      this.showLive(reply);
    } else if (this.shownText !== undefined) {
      // The reply left the stage: its last text first, then the live bubble goes (the
      // client says so before 'reply-end' adds the reply as a message).
      this.shownText = undefined;
      this.showLive.flush();
      this.list().setLive(null);
    }
  },

  async openConversation(id, title) {
    this.askedHere = null;
    this.setData({ conversationId: id, title, messages: [], hasOlder: false, replying: false });
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
    this.setData({ conversationId: null, title: NEW_TITLE, messages: [], hasOlder: false, replying: false });
  },

  onSend(e) {
    const content = e.detail.content;
    const clientMsgId = this.chat.send(content, this.data.conversationId);
    if (!clientMsgId) return;
    this.askedHere = clientMsgId;
    const question = { key: `c${clientMsgId}`, role: 'user', content, status: 'complete' };
    this.setData({ [`messages[${this.data.messages.length}]`]: question });
    this.showState(this.chat.state);
  },

  onStop() {
    this.chat.stop();
  },

  onReplyEnd(reply) {
    if (reply.clientMsgId !== this.askedHere) return;
    if (reply.status === 'blocked' && reply.messageId === null) {
      // The question itself was refused: its bubble says so, and no reply follows.
      const index = this.data.messages.findIndex((m) => m.key === `c${reply.clientMsgId}`);
      if (index >= 0) this.setData({ [`messages[${index}].status`]: 'blocked' });
      return;
    }
    // A question refused before any answer (too long, no quota) has its words in the
    // status line; an empty bubble would say nothing more.
    if (reply.status === 'failed' && !reply.text) return;
    // A blocked reply's text is taken off the screen; its bubble says why.
    const content = reply.status === 'blocked' ? '' : reply.text;
    const ended = {
      key: `r${reply.clientMsgId}`,
      id: reply.messageId,
      role: 'assistant',
      content,
      status: reply.status,
    };
    this.setData({ [`messages[${this.data.messages.length}]`]: ended });
  },

  async onReport(e) {
    try {
      await this.api.report(e.detail.messageId);
      wx.showToast({ title: '已举报，感谢反馈', icon: 'none' });
    } catch (err) {
      wx.showToast({ title: errorWords(err.code, err.message), icon: 'none' });
    }
  },
});
