// 充值: the quota packs on sale, paid with wx.requestPayment. The replies are credited when
// WeChat Pay's notice reaches the server, so after paying the page polls the order until it
// is paid. On iOS nothing is sold: WeChat forbids selling virtual goods there.
const { errorWords } = require('../../utils/errors');

const POLL_MS = 1000;
const POLL_TIMES = 30;

function isIos() {
  const info = wx.getDeviceInfo ? wx.getDeviceInfo() : wx.getSystemInfoSync();
  return info.platform === 'ios';
}

function requestPayment(payment) {
  return new Promise((resolve, reject) => {
    wx.requestPayment({ ...payment, success: resolve, fail: reject });
  });
}

function yuan(fen) {
  return (fen / 100).toFixed(2);
}

Page({
  data: {
    ios: false,
    enabled: false,
    reason: '',
    products: [],
    quota: null,
    paying: null,
    notice: '',
    error: '',
  },

  // Returns the listing's promise (WeChat ignores it), so that a caller can wait for it.
  onLoad() {
    this.setData({ ios: isIos() });
    return this.data.ios ? Promise.resolve() : this.refresh();
  },

  async refresh() {
    try {
      const listing = await getApp().api.products();
      const products = listing.products.map((p) => ({ ...p, yuan: yuan(p.price_fen) }));
      this.setData({ enabled: listing.enabled, reason: listing.reason || '', products, error: '' });
    } catch (e) {
      this.setData({ error: errorWords(e.code, e.message) });
    }
  },

  async onBuy(event) {
    const productId = Number(event.currentTarget.dataset.id);
    const api = getApp().api;
    this.setData({ paying: productId, notice: '', error: '' });
    try {
      const placed = await api.createOrder(productId);
      await requestPayment(placed.payment);
      this.setData({ notice: '支付完成，正在到账…' });
      const paid = await this.waitUntilPaid(placed.order.out_trade_no);
      this.setData({
        notice: paid ? `已到账 ${paid.order.replies} 次，剩余额度 ${paid.quota} 次` : '支付已完成，到账稍有延迟，请稍后在“我的”查看',
      });
    } catch (e) {
      const cancelled = e && typeof e.errMsg === 'string' && e.errMsg.includes('cancel');
      this.setData({ error: cancelled ? '已取消支付' : errorWords(e.code, e.message || e.errMsg) });
    }
    this.setData({ paying: null });
  },

  async waitUntilPaid(outTradeNo) {
    const api = getApp().api;
    for (let i = 0; i < POLL_TIMES; i += 1) {
      const answer = await api.order(outTradeNo);
      if (answer.order.state === 'paid') {
        this.setData({ quota: answer.quota });
        return answer;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    return null;
  },
});
