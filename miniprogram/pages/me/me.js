// 个人中心: log in with wx.login (with the invite code of the share card the user came from),
// the avatar and nickname (chosen the way WeChat now requires: <button open-type="chooseAvatar">
// and <input type="nickname">, saved on the server), today's free replies and the bought ones,
// share the invite card, open the store, log out.
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
    free: null,
    inviteCode: '',
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
    const shown = { user: answer.user, quota: answer.quota, avatarSrc: api.url(answer.user.avatar_url), error: '' };
    // GET /api/me also has today's free replies and the invite code; a profile change does not.
    if ('free' in answer) Object.assign(shown, { free: answer.free, inviteCode: answer.invite_code });
    this.setData(shown);
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
      await app.api.login('', app.globalData.invite);
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
    this.setData({ user: null, quota: null, free: null, inviteCode: '', avatarSrc: '', notice: '' });
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
