// At most one call per `intervalMs`, the last arguments always delivered: WeChat's runtime
// guide asks for few setData calls, so live typing is applied a few times a second, not per
// token, and the final text is never lost.

function throttle(fn, intervalMs) {
  let last = 0;
  let timer = null;
  let pending = null;
  const run = () => {
    timer = null;
    last = Date.now();
    const args = pending;
    pending = null;
    fn(...args);
  };
  const throttled = (...args) => {
    pending = args;
    if (timer) return;
    const wait = intervalMs - (Date.now() - last);
    if (wait <= 0) run();
    else timer = setTimeout(run, wait);
  };
  /** Deliver a waiting call now (the reply ended: show its last text at once). */
  throttled.flush = () => {
    if (!timer) return;
    clearTimeout(timer);
    run();
  };
  return throttled;
}

module.exports = { throttle };
