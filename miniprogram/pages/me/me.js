// 个人中心: log in with wx.login, the avatar and nickname (chosen the way WeChat now requires:
// <button open-type="chooseAvatar"> and <input type="nickname">, saved on the server), the
// remaining quota, log out.
const { errorWords } = require('../../utils/errors');

const AVATAR_TYPES = { png: 'image/png', webp: 'image/webp' };

/** The image type of a chosen avatar's temporary file, from its name (JPEG by default). */
function avatarType(path) {
  const extension = (/\.(\w+)$/.exec(path || '') || [])[1] || '';
  return AVATAR_TYPES[extension.toLowerCase()] || 'image/jpeg';
}

function readFile(filePath) {
  return new Promise((resolve, reject) => {
    wx.getFileSystemManager().readFile({ filePath, success: (res) => resolve(res.data), fail: reject });
  });
}

function profileWords(e) {
  if (e.code === 'content_blocked') return '昵称不符合规范，请换一个';
  return errorWords(e.code, e.message);
}

Page({
  data: {
    user: null,
    quota: null,
    avatarSrc: '',
    busy: false,
    saving: false,
    notice: '',
    error: '',
  },

  onShow() {
    if (getApp().api.token) this.refresh();
  },

  show(answer) {
    const api = getApp().api;
    this.setData({ user: answer.user, quota: answer.quota, avatarSrc: api.url(answer.user.avatar_url), error: '' });
  },

  async refresh() {
    try {
      this.show(await getApp().api.me());
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

  async onChooseAvatar(e) {
    const path = e.detail.avatarUrl;
    try {
      const data = await readFile(path);
      this.show(await getApp().api.setAvatar(data, avatarType(path)));
      this.setData({ notice: '头像已更新' });
    } catch (err) {
      this.setData({ notice: '', error: err.code ? profileWords(err) : '读取头像失败，请重试' });
    }
  },

  async onSaveNickname(e) {
    const nickname = ((e.detail.value && e.detail.value.nickname) || '').trim();
    if (!nickname) {
      this.setData({ error: '昵称不能为空' });
      return;
    }
    this.setData({ saving: true, error: '', notice: '' });
    try {
      this.show(await getApp().api.setNickname(nickname));
      this.setData({ notice: '昵称已保存' });
    } catch (err) {
      this.setData({ error: profileWords(err) });
    }
    this.setData({ saving: false });
  },

  onLogout() {
    const app = getApp();
    app.api.logout();
    app.chat.reset();
    this.setData({ user: null, quota: null, avatarSrc: '', notice: '' });
  },
});
