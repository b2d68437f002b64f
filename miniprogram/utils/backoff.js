// Reconnect delays: exponential growth, capped, with "equal jitter" so that many phones
// dropped by the same network glitch do not all come back at the same moment.

/**
 * The delay before reconnect attempt `attempt` (0-based): a random value in
 * [cap / 2, cap] where cap = min(maxMs, baseMs * 2^attempt).
 */
function backoffDelay(attempt, { baseMs, maxMs }, random = Math.random) {
  const cap = Math.min(maxMs, baseMs * Math.pow(2, attempt));
  return Math.round(cap / 2 + (random() * cap) / 2);
}

module.exports = { backoffDelay };
