// The shopper page: lists the goods, counts down to each sale from the
// server's clock, and places one-unit orders: through POST /order, or for
// goods whose checkout is "seckill" through POST /seckill, whose token it
// polls until the order is written.
'use strict';

const POLL_MS = 1000;
const ID_KEY = 'seckill.shopperId';

const list = document.getElementById('goods');
const template = document.getElementById('card');
const shopperID = document.getElementById('shopper-id');
const statusLine = document.getElementById('status');
const empty = document.getElementById('empty');

// Cards by goods id. A card keeps its element across polls, so a button
// that is waiting for an answer and the last outcome survive a refresh.
const cards = new Map();
// Server time minus client time, in ms: countdowns follow the server's
// clock, whatever the client's clock says.
let clockOffset = 0;
let pollTimer;

shopperID.value = load(ID_KEY);
shopperID.addEventListener('input', () => save(ID_KEY, shopperID.value.trim()));

function load(key) {
  try { return localStorage.getItem(key) || ''; } catch { return ''; }
}

function save(key, value) {
  try { localStorage.setItem(key, value); } catch { /* storage off: the field still works */ }
}

// Go writes nanoseconds; keep milliseconds, which every browser parses.
function parseTime(s) {
  return s ? Date.parse(s.replace(/(\.\d{3})\d+/, '$1')) : null;
}

function serverNow() { return Date.now() + clockOffset; }

async function poll() {
  clearTimeout(pollTimer);
  if (!document.hidden) {
    try {
      const sent = Date.now();
      const res = await fetch('/goods', { cache: 'no-store' });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const body = await res.json();
      // The server read its clock about halfway through the round trip.
      clockOffset = parseTime(body.server_time) - (sent + Date.now()) / 2;
      render(body.goods || []);
      statusLine.hidden = true;
    } catch {
      statusLine.textContent = 'Cannot reach the shop — retrying…';
      statusLine.hidden = false;
    }
  }
  clearTimeout(pollTimer);
  pollTimer = setTimeout(poll, POLL_MS);
}

document.addEventListener('visibilitychange', () => { if (!document.hidden) poll(); });

function render(goods) {
  const seen = new Set();
  for (const g of goods) {
    seen.add(g.id);
    let c = cards.get(g.id);
    if (!c) {
      c = newCard(g);
      cards.set(g.id, c);
      list.append(c.el);
    }
    c.goods = g;
    setText(c.el.querySelector('.name'), g.name);
  }
  for (const [id, c] of cards) {
    if (!seen.has(id)) {
      c.el.remove();
      cards.delete(id);
    }
  }
  empty.hidden = cards.size > 0;
  cards.forEach(paint);
}

function newCard(g) {
  const el = template.content.firstElementChild.cloneNode(true);
  el.dataset.goodsId = g.id;
  const c = { el, goods: g, busy: false, holdUntil: 0, pending: null };
  el.querySelector('.buy').addEventListener('click', () => buy(c));
  el.querySelector('.captcha-send').addEventListener('click', () => solveCaptcha(c));
  return c;
}

// cardState is the one state a card shows at server time now: before
// the start (with the stock that will be on sale), on sale, sold out
// (never also "on sale now"), or ended (no stock shown: nothing can be
// bought whatever is left).
function cardState(g, now) {
  const start = parseTime(g.start_at);
  const end = parseTime(g.end_at);
  if (start !== null && now < start) {
    return { phase: 'soon', stock: g.stock + ' left', countdown: 'Starts in ' + duration(start - now), button: 'Not started' };
  }
  if (end !== null && now >= end) return { phase: 'ended', stock: '', countdown: 'Sale ended', button: 'Sale ended' };
  if (g.stock <= 0) {
    return { phase: 'soldout', stock: 'Sold out', countdown: end !== null ? 'Sale ends in ' + duration(end - now) : '', button: 'Sold out' };
  }
  return { phase: 'open', stock: g.stock + ' left', countdown: end !== null ? 'Ends in ' + duration(end - now) : 'On sale now', button: 'Buy' };
}

// paint shows a card's state for the current time.
function paint(c) {
  const g = c.goods;
  const st = cardState(g, serverNow());
  c.el.dataset.phase = st.phase;
  setText(c.el.querySelector('.price'), yuan(g.price || 0));
  const stock = c.el.querySelector('.stock');
  setText(stock, st.stock);
  stock.hidden = st.stock === '';
  const countdown = c.el.querySelector('.countdown');
  setText(countdown, st.countdown);
  const start = parseTime(g.start_at), end = parseTime(g.end_at);
  countdown.title = [start !== null ? 'Starts ' + zoned(start) : '', end !== null ? 'Ends ' + zoned(end) : ''].filter(Boolean).join('; ');

  const btn = c.el.querySelector('.buy');
  btn.disabled = c.busy || c.queued || st.phase !== 'open' || performance.now() < c.holdUntil;
  setText(btn, c.queued ? 'In the queue…' : c.busy ? 'Ordering…' : st.phase === 'open' && c.pending ? 'Retry' : st.button);
}

// setText writes text only when it changed: the cards repaint four times a second.
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

// duration writes a countdown: "2d 03h 15m", "1h 05m 09s", "4m 59s", "9s".
function duration(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60, sec = s % 60;
  const two = n => String(n).padStart(2, '0');
  if (d > 0) return `${d}d ${two(h)}h ${two(m)}m`;
  if (h > 0) return `${h}h ${two(m)}m ${two(sec)}s`;
  if (m > 0) return `${m}m ${two(sec)}s`;
  return `${sec}s`;
}

// Every refusal of an order, in words.
const refusals = {
  sold_out: 'Sold out',
  not_started: 'The sale has not started yet',
  ended: 'The sale has ended',
  limit_exceeded: 'You already hold as many of these as one shopper may buy',
  request_in_progress: 'Your earlier click is still being handled — wait a moment, then retry',
  idempotency_key_mismatch: 'That retry did not match the first attempt — reload the page',
  not_found: 'This item is no longer on sale',
  invalid_request: 'The shop could not read that order — check your shopper id',
  busy: 'The shop is very busy — click Retry in a moment; it will not order twice',
  unavailable: 'The shop cannot take orders right now — click Retry in a moment; nothing was ordered',
  stock_not_loaded: 'The stock is being reloaded — click Retry in a moment',
  outcome_unknown: 'We could not confirm your order — click Retry: it finds the same order, never a second one',
  rate_limited: 'Too many requests — try again in a moment',
  captcha_invalid: 'Those digits did not match — type the ones in the new picture',
  too_many_requests: 'Your earlier order of this item is still being handled — wait a moment, then retry',
  ordered_early: 'You ordered before the sale opened, so this sale does not take your orders',
};

// orderPath is the order route the page sells through: /order, or the
// version named by ?version= (e.g. ?version=V8, the version behind the
// edge's limits, which offers a captcha when this address orders too fast).
const chosenVersion = (new URLSearchParams(location.search).get('version') || '').replace(/[^A-Za-z0-9]/g, '');
const orderPath = '/order' + chosenVersion;

// pathFor is where an order of goods g goes: /seckill when its checkout
// says so (unless ?version= chose a route), else orderPath.
function pathFor(g) {
  return g.checkout === 'seckill' && !chosenVersion ? '/seckill' : orderPath;
}

// Why an accepted request failed, in words; its unit is back on sale.
const failures = {
  expired: 'Your place in the queue ran out before an order could be written — nothing was ordered',
  refused: 'The shop could not write your order — nothing was ordered',
};

// awaitOrder polls an accepted request's token, as often as the shop
// asks, until its order is written or it failed; it answers as a 201 or a
// refusal would.
async function awaitOrder(c, acc) {
  c.queued = true;
  paint(c);
  say(c, 'You are in the queue — your order is being written…', true);
  try {
    for (;;) {
      await new Promise(r => setTimeout(r, Math.min(Math.max(acc.poll_after_ms || 1000, 250), 5000)));
      let res;
      try {
        res = await fetch('/seckill/' + encodeURIComponent(acc.token), { cache: 'no-store' });
      } catch { continue; } // no answer: ask again, the token keeps its place
      if (res.status === 503) continue;
      const body = await res.json().catch(() => ({}));
      if (res.status !== 200) return { ok: false, text: refusals[body.error] || `The shop lost track of your request (HTTP ${res.status})` };
      acc = body;
      if (acc.status === 'ordered') return { ok: true, text: 'Ordered! order id ' + acc.order.order_id + ' — pay it below' };
      if (acc.status === 'failed') return { ok: false, text: refusals[acc.reason] || failures[acc.reason] || `Not ordered (${acc.reason})` };
    }
  } finally {
    c.queued = false;
  }
}

// offerCaptcha fetches a captcha and shows it on the card; its solution
// goes with the next order and lets it past the address's limit once.
async function offerCaptcha(c) {
  try {
    const res = await fetch('/captcha', { method: 'POST' });
    const body = await res.json();
    if (res.status !== 201) return false;
    const box = c.el.querySelector('.captcha');
    c.captcha = { id: body.captcha_id, solution: '' };
    box.querySelector('img').src = body.image;
    box.querySelector('.captcha-answer').value = '';
    box.hidden = false;
    return true;
  } catch {
    return false;
  }
}

// solveCaptcha orders again with the digits typed.
function solveCaptcha(c) {
  if (!c.captcha) return;
  c.captcha.solution = c.el.querySelector('.captcha-answer').value.trim();
  c.el.querySelector('.captcha').hidden = true;
  c.holdUntil = 0;
  buy(c);
}

async function buy(c) {
  const userID = Number(shopperID.value);
  if (!Number.isSafeInteger(userID) || userID < 1) {
    say(c, 'Enter your shopper id first', false);
    shopperID.focus();
    return;
  }
  // One Idempotency-Key per intended order: a retry after a 503 or no
  // answer sends the same key, so the shop places one order at most.
  if (!c.pending || c.pending.user !== userID) c.pending = { user: userID, key: uuid() };
  // Disabled from the click until the answer: a double click sends one order.
  c.busy = true;
  paint(c);
  let text = 'No answer from the shop — click Retry: it will not order twice', ok = false;
  try {
    const headers = { 'Content-Type': 'application/json', 'Idempotency-Key': c.pending.key };
    if (c.captcha && c.captcha.solution) {
      headers['X-Captcha-Id'] = c.captcha.id;
      headers['X-Captcha-Solution'] = c.captcha.solution;
    }
    c.captcha = null; // a captcha is good for one order, right or wrong
    const res = await fetch(pathFor(c.goods), {
      method: 'POST',
      headers,
      body: JSON.stringify({ user_id: userID, goods_id: c.goods.id, number: 1 }),
    });
    const body = await res.json().catch(() => ({}));
    const code = body.error || (res.status === 429 ? 'rate_limited' : undefined);
    if (res.status === 201) {
      text = 'Ordered! order id ' + body.order_id;
      ok = true;
    } else if (res.status === 202) {
      c.pending = null;
      c.busy = false;
      ({ ok, text } = await awaitOrder(c, body));
    } else {
      text = refusals[code] || `The shop refused the order (${code || 'HTTP ' + res.status})`;
    }
    if (res.status === 429 && body.captcha && await offerCaptcha(c)) {
      text = 'Too many orders from your address — type the digits in the picture to order now';
    }
    if (res.status !== 503 && res.status !== 429) c.pending = null; // answered for good: a new click is a new order
    if (res.status === 429 || res.status === 503) {
      // Honour Retry-After (capped) so a busy server is not hammered.
      const wait = Math.min(Number(res.headers.get('Retry-After')) || 1, 10);
      c.holdUntil = performance.now() + wait * 1000;
      setTimeout(() => paint(c), wait * 1000 + 50);
    }
  } catch { /* network error: keep the key for the retry */ }
  c.busy = false;
  say(c, text, ok);
  paint(c);
  if (ok) {
    poll(); // show the new stock now rather than within a second
    if (window.refreshOrders) window.refreshOrders();
  }
}

function say(c, text, ok) {
  const out = c.el.querySelector('.outcome');
  out.textContent = text;
  out.className = 'outcome ' + (ok ? 'ok' : 'bad');
}

// Countdowns tick between polls.
setInterval(() => cards.forEach(paint), 250);
poll();
