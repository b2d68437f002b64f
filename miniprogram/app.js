const config = require('./config');
const { Api } = require('./utils/api');
const { ChatClient } = require('./utils/chat-client');
const { privacy } = require('./utils/privacy');

// One API client and one chat socket for the whole app. WeChat closes sockets a few
// seconds after the app goes to the background, so the socket follows show/hide and a
// reply cut off meanwhile is resumed on the next show.
// A share card opens the app with ?invite=<code>; the code is kept for the first login.
App({
  onLaunch(options) {
    privacy.install(wx);
    this.api = new Api({ baseUrl: config.baseUrl, devLoginWid: config.devLoginWid });
    this.chat = new ChatClient({ url: config.wsUrl, getToken: () => this.api.token });
    this.globalData = { openConversation: null, invite: inviteOf(options) };
  },

  onShow(options) {
    this.globalData.invite = inviteOf(options) || this.globalData.invite;
    if (this.api.token) this.chat.open();
  },

  onHide() {
    this.chat.close();
  },
});

function inviteOf(options) {
  const invite = options && options.query && options.query.invite;
  return typeof invite === 'string' && /^[A-Za-z0-9]{4,16}$/.test(invite) ? invite : '';
}
