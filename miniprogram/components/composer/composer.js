// The input line: send while idle, stop while a reply streams.
Component({
  properties: {
    streaming: { type: Boolean, value: false },
    disabled: { type: Boolean, value: false },
  },
  data: {
    value: '',
  },
  methods: {
    onInput(e) {
      this.setData({ value: e.detail.value });
    },
    onSend() {
      const content = this.data.value;
      if (!content.trim() || this.data.disabled) return;
      this.triggerEvent('send', { content });
      this.setData({ value: '' });
    },
    onStop() {
      this.triggerEvent('stop');
    },
  },
});
