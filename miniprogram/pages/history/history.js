// The user's conversations, newest first, loaded page by page as the list scrolls.
const { errorWords } = require('../../utils/errors');
const { shortTime } = require('../../utils/time');

const PAGE_SIZE = 20;

function item(conversation) {
  return { id: conversation.id, title: conversation.title || '（无标题）', time: shortTime(conversation.updated_at) };
}

Page({
  data: {
    items: [],
    nextOffset: 0,
    loading: false,
    error: '',
  },

  onShow() {
    this.reload();
  },

  onPullDownRefresh() {
    this.reload().then(() => wx.stopPullDownRefresh());
  },

  onReachBottom() {
    this.loadMore();
  },

  reload() {
    this.setData({ items: [], nextOffset: 0, error: '' });
    return this.loadMore();
  },

  async loadMore() {
    const api = getApp().api;
    if (this.data.loading || this.data.nextOffset === null) return;
    if (!api.token) {
      this.setData({ error: errorWords('unauthorized') });
      return;
    }
    this.setData({ loading: true });
    try {
      const page = await api.conversations(this.data.nextOffset, PAGE_SIZE);
      this.setData({ items: this.data.items.concat(page.items.map(item)), nextOffset: page.next_offset });
    } catch (e) {
      this.setData({ error: errorWords(e.code, e.message) });
    }
    this.setData({ loading: false });
  },

  onOpen(e) {
    const chosen = this.data.items[e.currentTarget.dataset.index];
    getApp().globalData.openConversation = { id: chosen.id, title: chosen.title };
    wx.switchTab({ url: '/pages/chat/chat' });
  },

  onActions(e) {
    const index = e.currentTarget.dataset.index;
    wx.showActionSheet({
      itemList: ['重命名', '删除'],
      success: (res) => (res.tapIndex === 0 ? this.rename(index) : this.remove(index)),
    });
  },

  rename(index) {
    const chosen = this.data.items[index];
    wx.showModal({
      title: '重命名',
      editable: true,
      placeholderText: chosen.title,
      success: async (res) => {
        const title = (res.content || '').trim();
        if (!res.confirm || !title) return;
        try {
          const renamed = await getApp().api.rename(chosen.id, title);
          this.setData({ [`items[${index}].title`]: renamed.title });
        } catch (e) {
          wx.showToast({ title: errorWords(e.code, e.message), icon: 'none' });
        }
      },
    });
  },

  remove(index) {
    const chosen = this.data.items[index];
    wx.showModal({
      title: '删除对话',
      content: `删除“${chosen.title}”及其全部消息？`,
      confirmColor: '#d93025',
      success: async (res) => {
        if (!res.confirm) return;
        try {
          await getApp().api.remove(chosen.id);
          const nextOffset = this.data.nextOffset === null ? null : this.data.nextOffset - 1;
          this.setData({ items: this.data.items.filter((c) => c.id !== chosen.id), nextOffset });
        } catch (e) {
          wx.showToast({ title: errorWords(e.code, e.message), icon: 'none' });
        }
      },
    });
  },
});
