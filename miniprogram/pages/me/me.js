// 个人中心: log in with wx.login, show the nickname and remaining quota, log out.
const { errorWords } = require('../../utils/errors');

Page({
  data: {
    user: null,
    quota: null,
    busy: false,
    error: '',
  },

  onShow() {
    if (getApp().api.token) this.refresh();
  },

  async refresh() {
    try {
      const me = await getApp().api.me();
      this.setData({ user: me.user, quota: me.quota, error: '' });
    } catch (e) {
      this.setData({ user: e.status === 401 ? null : this.data.user, error: errorWords(e.code, e.message) });
    }
  },

  async onLogin() {
    const app = getApp();
    this.setData({ busy: true, error: '' });
    try {
      await app.api.login();
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
    this.setData({ user: null, quota: null });
  },
});
