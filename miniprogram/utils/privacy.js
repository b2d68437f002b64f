// WeChat's privacy authorisation: the first call of an API that needs the user's consent
// (chooseAvatar, the nickname input, the clipboard) is held by WeChat, which hands
// wx.onNeedPrivacyAuthorization a `resolve`; the privacy popup answers it with the user's
// choice. One gate for the app, installed at launch.
const { Emitter } = require('./emitter');

// What each held API is for, in the words the user is told when they refuse.
const PURPOSES = {
  chooseAvatar: '设置头像',
  setClipboardData: '复制回复',
};

class PrivacyGate extends Emitter {
  constructor() {
    super();
    this._resolve = null;
    this.referrer = '';
  }

  /** Listen for WeChat's requests (base library 2.32.3 and later; older ones never ask). */
  install(wxApi) {
    if (typeof wxApi.onNeedPrivacyAuthorization !== 'function') return;
    wxApi.onNeedPrivacyAuthorization((resolve, eventInfo) => {
      this._resolve = resolve;
      this.referrer = (eventInfo && eventInfo.referrer) || '';
      this.emit('need', this.referrer);
    });
  }

  get pending() {
    return this._resolve !== null;
  }

  /** What the held call was for, in words ('' if unknown). */
  get purpose() {
    return PURPOSES[this.referrer] || '';
  }

  /** The user tapped the agree button (an open-type="agreePrivacyAuthorization" one). */
  agree(buttonId) {
    this._answer({ buttonId, event: 'agree' });
  }

  disagree() {
    this._answer({ event: 'disagree' });
  }

  _answer(answer) {
    const resolve = this._resolve;
    this._resolve = null;
    if (resolve) resolve(answer);
    this.emit('answered', answer.event);
  }
}

const privacy = new PrivacyGate();

module.exports = { PrivacyGate, privacy };
