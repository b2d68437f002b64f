// Where the mini-program finds its wxgpt server: the one file to edit when deploying.
// On a phone both must be https:// and wss:// on a domain whitelisted in the admin console.
module.exports = {
  baseUrl: 'http://127.0.0.1:8000',
  wsUrl: 'ws://127.0.0.1:8000/ws/chat',
  // A server started with WXGPT_DEV_LOGIN=1 accepts this id instead of a wx.login code;
  // leave it empty for a real deployment.
  devLoginWid: '',
};
