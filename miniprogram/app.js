const config = require('./config');
const { Api } = require('./utils/api');
const { ChatClient } = require('./utils/chat-client');
const { privacy } = require('./utils/privacy');

// One API client and one chat socket for the whole app. WeChat closes sockets a few
// seconds after the app goes to the background, so the socket follows show/hide and a
// reply cut off meanwhile is resumed on the next show.
App({
  onLaunch() {
    privacy.install(wx);
    this.api = new Api({ baseUrl: config.baseUrl, devLoginWid: config.devLoginWid });
    this.chat = new ChatClient({ url: config.wsUrl, getToken: () => this.api.token });
    this.globalData = { openConversation: null };
  },

  onShow() {
    if (this.api.token) this.chat.open();
  },

  onHide() {
    this.chat.close();
  },
});
