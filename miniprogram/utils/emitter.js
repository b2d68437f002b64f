// A minimal event emitter: the pages listen to the socket client through it.
class Emitter {
  constructor() {
    this._listeners = {};
  }

  /** Call `listener(payload)` on every `event`; returns a function that unsubscribes. */
  on(event, listener) {
    (this._listeners[event] = this._listeners[event] || []).push(listener);
    return () => this.off(event, listener);
  }

  off(event, listener) {
    this._listeners[event] = (this._listeners[event] || []).filter((l) => l !== listener);
  }

  emit(event, payload) {
    (this._listeners[event] || []).slice().forEach((listener) => listener(payload));
  }
}

module.exports = { Emitter };
