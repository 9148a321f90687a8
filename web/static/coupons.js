// The shopper page's coupon centre and "My coupons". Runs after shared.js
// and shopper.js, whose shopper id field, setText and serverNow it uses;
// its own names stay inside this block.
'use strict';
{
  const TEMPLATES_MS = 2000; // the claimable templates, like the goods
  const MINE_MS = 15000; // the shopper's coupons: they change by claims (refreshed then) and expiry

  const grid = document.getElementById('coupon-templates');
  const cardTemplate = document.getElementById('coupon-card');
  const couponStatus = document.getElementById('coupon-status');
  const noCoupons = document.getElementById('no-coupons');
  const mine = document.getElementById('mine');
  const mineNote = document.getElementById('mine-note');
  const tabs = [...document.querySelectorAll('#mine-tabs [role=tab]')];

  const couponCards = new Map(); // template id -> {el, t, busy, holdUntil, pending}
  let templatesTimer, mineTimer, mineSeq = 0;
  let mineStatus = 'unused';

  function userID() {
    const id = Number(shopperID.value);
    return Number.isSafeInteger(id) && id >= 1 ? id : null;
  }

  async function pollTemplates() {
    clearTimeout(templatesTimer);
    if (!document.hidden) {
      try {
        const res = await fetch('/coupon-templates', { cache: 'no-store' });
        if (!res.ok) throw new Error('HTTP ' + res.status);
        renderTemplates((await res.json()).templates || []);
        couponStatus.hidden = true;
      } catch {
        couponStatus.textContent = 'Cannot load the coupons — retrying…';
        couponStatus.hidden = false;
      }
    }
    clearTimeout(templatesTimer);
    templatesTimer = setTimeout(pollTemplates, TEMPLATES_MS);
  }

  function renderTemplates(templates) {
    const seen = new Set();
    for (const t of templates) {
      seen.add(t.id);
      let c = couponCards.get(t.id);
      if (!c) {
        c = newCard(t);
        couponCards.set(t.id, c);
        grid.append(c.el);
      }
      c.t = t;
    }
    for (const [id, c] of couponCards) {
      if (!seen.has(id)) { c.el.remove(); couponCards.delete(id); }
    }
    noCoupons.hidden = couponCards.size > 0;
    couponCards.forEach(paint);
  }

  function newCard(t) {
    const el = cardTemplate.content.firstElementChild.cloneNode(true);
    el.dataset.templateId = t.id;
    const c = { el, t, busy: false, holdUntil: 0, pending: null };
    el.querySelector('.claim').addEventListener('click', () => claim(c));
    return c;
  }

  function perShopper(t) {
    return t.per_user_limit > 0 ? `${t.per_user_limit} per shopper` : 'no limit per shopper';
  }

  function claimWindow(t) {
    const start = apiTime(t.start_at), end = apiTime(t.end_at);
    if (start !== null && end !== null) return `Claim from ${zoned(start)} until ${zoned(end)}`;
    if (end !== null) return `Claim until ${zoned(end)}`;
    if (start !== null) return `Claim from ${zoned(start)}, no closing date`;
    return 'Claim any time, no closing date';
  }

  // paint shows a card for the current time: a template that closed since
  // the last poll is not offered.
  function paint(c) {
    const t = c.t, now = serverNow();
    const start = apiTime(t.start_at), end = apiTime(t.end_at);
    const phase = start !== null && now < start ? 'soon' : end !== null && now >= end ? 'ended' : 'open';
    const empty = t.remaining === 0;
    setText(c.el.querySelector('.name'), t.name);
    setText(c.el.querySelector('.value'), couponValue(t));
    setText(c.el.querySelector('.terms'), `Valid ${validFor(t.valid_for)} after claiming · ${perShopper(t)}`);
    setText(c.el.querySelector('.remaining'), t.remaining == null ? 'Stock unknown' : empty ? 'All claimed' : `${t.remaining} left`);
    setText(c.el.querySelector('.window'), claimWindow(t));
    const btn = c.el.querySelector('.claim');
    btn.disabled = c.busy || phase !== 'open' || empty || performance.now() < c.holdUntil;
    setText(btn, c.busy ? 'Claiming…' : phase === 'soon' ? 'Not started' : phase === 'ended' ? 'Claiming ended' : empty ? 'All claimed' : 'Claim');
  }

  // refusal says in words why the server did not give a coupon.
  function refusal(status, body, t) {
    switch (body.error) {
      case 'out_of_stock': return 'Out of stock: every coupon of this kind has been claimed';
      case 'limit_exceeded': return t.per_user_limit === 1
        ? 'You have already claimed this coupon: one per shopper'
        : `You have already claimed ${t.per_user_limit} of these, the most one shopper may hold`;
      case 'not_started': return 'Claiming has not started yet';
      case 'ended': return 'Claiming has ended';
      case 'not_found': return 'This coupon is no longer offered';
      case 'busy': return 'The shop is busy — tap Claim again in a moment';
      case 'unavailable': return 'Coupons are unavailable right now — tap Claim again in a moment';
      case 'outcome_unknown': return 'Your claim could not be confirmed — tap Claim again to find out; it cannot claim twice';
      case 'invalid_request': return 'The claim was refused: ' + (body.message || 'invalid request');
    }
    if (status === 429) return 'Too many requests — tap Claim again in a moment';
    return `Something went wrong (HTTP ${status}) — tap Claim again`;
  }

  async function claim(c) {
    const user = userID();
    if (user === null) {
      say(c, 'Enter your shopper id first', false);
      shopperID.focus();
      return;
    }
    // One Idempotency-Key per intended claim: a retry of a click that got
    // no answer, or a 503, sends the same key and gets the coupon the first
    // try got, if any. An answer that settles the claim starts a new one.
    if (!c.pending || c.pending.user !== user) c.pending = { user, key: uuid() };
    c.busy = true;
    paint(c);
    let text = 'No answer from the shop — tap Claim again; the retry cannot claim twice', ok = false;
    try {
      const res = await fetch('/coupons/claim', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Idempotency-Key': c.pending.key },
        body: JSON.stringify({ user_id: user, template_id: c.t.id }),
      });
      const body = await res.json().catch(() => ({}));
      ok = res.status === 201;
      text = ok ? `Claimed! Coupon ${body.coupon_id}, valid until ${zoned(apiTime(body.expires_at))}` : refusal(res.status, body, c.t);
      if (res.status === 429 || res.status === 503) {
        const wait = Math.min(Number(res.headers.get('Retry-After')) || 1, 10);
        c.holdUntil = performance.now() + wait * 1000;
        setTimeout(() => paint(c), wait * 1000 + 50);
      } else {
        c.pending = null;
      }
    } catch { /* no answer: keep the key for the retry */ }
    c.busy = false;
    say(c, text, ok);
    paint(c);
    if (ok) {
      pollTemplates();
      showTab('unused');
    }
  }

  function say(c, text, ok) {
    const out = c.el.querySelector('.outcome');
    out.textContent = text;
    out.className = 'outcome ' + (ok ? 'ok' : 'bad');
  }

  // My coupons, one status at a time.
  function showTab(status) {
    mineStatus = status;
    for (const tab of tabs) tab.setAttribute('aria-selected', String(tab.dataset.status === status));
    refreshMine();
  }

  for (const tab of tabs) tab.addEventListener('click', () => showTab(tab.dataset.status));

  async function refreshMine() {
    clearTimeout(mineTimer);
    mineTimer = setTimeout(refreshMine, MINE_MS);
    const user = userID(), status = mineStatus, seq = ++mineSeq;
    if (user === null) {
      mine.replaceChildren();
      mineNote.textContent = 'Enter your shopper id to see your coupons.';
      return;
    }
    try {
      const res = await fetch(`/users/${user}/coupons?status=${status}`, { cache: 'no-store' });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const coupons = (await res.json()).coupons || [];
      if (seq !== mineSeq) return; // a newer request answers for the page
      mine.replaceChildren(...coupons.map(couponItem));
      mineNote.textContent = coupons.length ? '' : `No ${status} coupons.`;
    } catch {
      if (seq === mineSeq) mineNote.textContent = 'Cannot load your coupons — retrying…';
    }
  }

  function couponItem(cp) {
    const li = document.createElement('li');
    li.className = 'coupon-item';
    li.dataset.couponId = cp.coupon_id;
    li.dataset.status = cp.status;
    const part = (cls, text) => {
      const span = document.createElement('span');
      span.className = cls;
      span.textContent = text;
      return span;
    };
    const when =
      cp.status === 'used' ? `Used ${zoned(apiTime(cp.used_at))} on order ${cp.order_id}` :
      cp.status === 'expired' ? `Expired ${zoned(apiTime(cp.expires_at))}` :
      `Expires ${zoned(apiTime(cp.expires_at))}`;
    li.append(part('value', cp.type ? couponValue(cp) : 'Coupon'), part('name', cp.name || `template ${cp.template_id}`),
      part('when', when), part('id muted', `coupon ${cp.coupon_id}`));
    return li;
  }

  let typing;
  shopperID.addEventListener('input', () => { clearTimeout(typing); typing = setTimeout(refreshMine, 300); });
  document.addEventListener('visibilitychange', () => { if (!document.hidden) { pollTemplates(); refreshMine(); } });
  setInterval(() => couponCards.forEach(paint), 250);
  pollTemplates();
  window.refreshCoupons = refreshMine;
  refreshMine();
}
