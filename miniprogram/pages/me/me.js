// 个人中心: log in with wx.login (with the invite code of the share card the user came from),
// show today's free replies and the bought ones, share the invite card, open the store.
const { errorWords } = require('../../utils/errors');

Page({
  data: {
    user: null,
    quota: null,
    free: null,
    inviteCode: '',
    busy: false,
    error: '',
  },

  onShow() {
    if (getApp().api.token) this.refresh();
  },

  async refresh() {
    try {
      const me = await getApp().api.me();
      this.setData({ user: me.user, quota: me.quota, free: me.free, inviteCode: me.invite_code, error: '' });
    } catch (e) {
      this.setData({ user: e.status === 401 ? null : this.data.user, error: errorWords(e.code, e.message) });
    }
  },

  async onLogin() {
    const app = getApp();
    this.setData({ busy: true, error: '' });
    try {
      await app.api.login('', app.globalData.invite);
      app.chat.open();
      await this.refresh();
    } catch (e) {
      this.setData({ error: errorWords(e.code, e.message) });
    }
    this.setData({ busy: false });
  },

  onLogout() {
    const app = getApp();
    app.api.logout();
    app.chat.reset();
    this.setData({ user: null, quota: null, free: null, inviteCode: '' });
  },

  onOpenStore() {
    wx.navigateTo({ url: '/pages/store/store' });
  },

  // The share card carries the invite code: a friend who logs in from it gets replies, and so
  // does the user.
  onShareAppMessage() {
    const code = this.data.inviteCode;
    return {
      title: '和我一起用 wxgpt 聊天',
      path: code ? `/pages/chat/chat?invite=${code}` : '/pages/chat/chat',
    };
  },
});
