// The privacy popup: shown when WeChat holds a call until the user consents; links to the
// privacy guide (wx.openPrivacyContract) and answers with agree or refuse. Refusing only
// closes the popup and says what cannot be done without consent; the rest of the app goes on.
const { privacy } = require('../../utils/privacy');

Component({
  data: {
    show: false,
  },
  lifetimes: {
    attached() {
      this.off = privacy.on('need', () => this.setData({ show: true }));
      if (privacy.pending) this.setData({ show: true });
    },
    detached() {
      this.off();
    },
  },
  methods: {
    onOpenContract() {
      wx.openPrivacyContract({});
    },

    onAgree() {
      privacy.agree('agree-privacy');
      this.setData({ show: false });
    },

    onRefuse() {
      const purpose = privacy.purpose;
      privacy.disagree();
      this.setData({ show: false });
      const what = purpose ? `暂不能${purpose}` : '部分功能暂不可用';
      wx.showToast({ title: `未同意隐私保护指引，${what}；对话不受影响`, icon: 'none' });
    },
  },
});
