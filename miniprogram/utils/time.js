// How a stored ISO-8601 time is shown: today only the time, this year the date, else the year.

function pad(n) {
  return String(n).padStart(2, '0');
}

/** "14:05" today, "11-20 14:05" this year, "2025-11-20" before; `now` for tests. */
function shortTime(iso, now = new Date()) {
  const t = new Date(iso);
  const hm = `${pad(t.getHours())}:${pad(t.getMinutes())}`;
  if (t.toDateString() === now.toDateString()) return hm;
  const md = `${pad(t.getMonth() + 1)}-${pad(t.getDate())}`;
  if (t.getFullYear() === now.getFullYear()) return `${md} ${hm}`;
  return `${t.getFullYear()}-${md}`;
}

module.exports = { shortTime };
