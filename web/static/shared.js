// Shared by the shopper and the admin pages: coupons in words (what one
// takes off, how long it stays valid), dates with their time zone, and
// idempotency keys.
'use strict';

// yuan writes cents as yuan: 1000 → ¥10, 990 → ¥9.90.
function yuan(cents) {
  const fen = cents % 100;
  return '¥' + Math.trunc(cents / 100) + (fen ? '.' + String(fen).padStart(2, '0') : '');
}

// couponValue says what a template or coupon takes off.
function couponValue(t) {
  switch (t.type) {
    case 'fixed': return `${yuan(t.value)} off`;
    case 'percent': return `${t.value}% off`;
    case 'threshold': return `${yuan(t.value)} off orders of ${yuan(t.threshold)} or more`;
  }
  return 'Coupon';
}

// goSeconds reads a Go duration as the API writes it ("72h0m0s", "1m30s",
// "2s") in whole seconds.
function goSeconds(d) {
  const unit = { h: 3600, m: 60, s: 1 };
  let s = 0;
  for (const [, n, u] of String(d).matchAll(/(\d+(?:\.\d+)?)([hms])(?!s)/g)) s += Number(n) * unit[u];
  return Math.round(s);
}

// validFor says a Go duration in the largest whole unit: "3 days", "90 minutes".
function validFor(d) {
  const s = goSeconds(d);
  const plural = (n, w) => `${n} ${w}${n === 1 ? '' : 's'}`;
  if (s >= 86400 && s % 86400 === 0) return plural(s / 86400, 'day');
  if (s >= 3600 && s % 3600 === 0) return plural(s / 3600, 'hour');
  if (s >= 60 && s % 60 === 0) return plural(s / 60, 'minute');
  return plural(s, 'second');
}

// zoned writes an instant (ms since the epoch) in the browser's time zone,
// naming the zone: "5 Jan 2026, 10:00 GMT+5:30".
const zonedFormat = new Intl.DateTimeFormat([], {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZoneName: 'short',
});
function zoned(ms) { return zonedFormat.format(new Date(ms)); }

// apiTime parses a time the API wrote (Go writes nanoseconds; keep
// milliseconds, which every browser parses) into ms, or null.
function apiTime(s) {
  return s ? Date.parse(s.replace(/(\.\d{3})\d+/, '$1')) : null;
}

// uuid makes an idempotency key. crypto.randomUUID exists only in secure
// contexts (https, localhost).
function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map(x => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
