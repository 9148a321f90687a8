// My orders: the shopper's orders with their status, and for an unpaid
// one a Pay button counting down to its payment deadline, with a coupon
// to redeem against it. Refusals are said in words.
'use strict';

(() => {
  const ORDERS_MS = 2000;
  const list = document.getElementById('orders');
  const note = document.getElementById('orders-note');
  const rowTemplate = document.getElementById('order-row');
  const shopperField = document.getElementById('shopper-id');
  const rows = new Map(); // order id -> {el, order, busy}
  let offset = 0; // server time minus client time, ms
  let timer;
  let coupons = []; // the shopper's unused coupons

  const payRefusals = {
    order_expired: 'The payment deadline has passed: the order will be cancelled',
    order_cancelled: 'This order was cancelled: it was not paid in time',
    order_refused: 'The shop could not confirm the stock of this order: it cannot be paid',
    order_pending: 'Your order is still being confirmed — click Pay again in a moment',
    coupon_used: 'That coupon was used for another order',
    coupon_expired: 'That coupon has expired',
    threshold_not_met: 'This order is below the coupon’s minimum amount',
    not_found: 'The shop does not know this order or coupon for your shopper id',
    invalid_request: 'The shop could not read that payment',
    busy: 'The shop is very busy — click Pay again in a moment',
    unavailable: 'The shop cannot take payments right now — click Pay again in a moment',
    outcome_unknown: 'We could not confirm the payment — click Pay again: it never pays twice',
  };

  const names = new Map(); // goods id -> name, from the shop's cards
  function goodsName(id) {
    const card = document.querySelector(`#goods [data-goods-id="${id}"] .name`);
    if (card) names.set(id, card.textContent);
    return names.get(id) || `goods ${id}`;
  }

  function user() {
    const id = Number(shopperField.value);
    return Number.isSafeInteger(id) && id > 0 ? id : 0;
  }

  function countdown(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  }

  // stateText says where an order stands, from the server's status and,
  // for an unpaid order, its deadline by the server's clock.
  function stateText(o, now) {
    const deadline = apiTime(o.pay_deadline);
    switch (o.status) {
      case 'unpaid':
        return now < deadline ? `Unpaid — pay within ${countdown(deadline - now)} (by ${zoned(deadline)})` : 'Payment deadline passed';
      case 'expired': return 'Payment deadline passed';
      case 'paid': return o.discount > 0 ? `Paid ${yuan(o.to_pay)} (${yuan(o.discount)} off with a coupon)` : `Paid ${yuan(o.to_pay)}`;
      case 'cancelled': return 'Cancelled: not paid in time';
      case 'refused': return 'Refused: the shop could not confirm its stock';
    }
    return o.status;
  }

  function paintRow(r) {
    const o = r.order;
    const now = Date.now() + offset;
    const payable = o.status === 'unpaid' && now < apiTime(o.pay_deadline);
    r.el.dataset.status = payable ? 'unpaid' : o.status === 'unpaid' ? 'expired' : o.status;
    const what = `Order ${o.order_id}: ${o.number} × ${goodsName(o.goods_id)} = ${yuan(o.amount)}`;
    if (r.el.querySelector('.what').textContent !== what) r.el.querySelector('.what').textContent = what;
    const state = stateText(o, now);
    if (r.el.querySelector('.state').textContent !== state) r.el.querySelector('.state').textContent = state;
    r.el.querySelector('.pay-form').hidden = !payable;
    const btn = r.el.querySelector('.pay');
    btn.disabled = r.busy || !payable;
    const label = r.busy ? 'Paying…' : `Pay ${yuan(toPay(r))} · ${countdown(apiTime(o.pay_deadline) - now)} left`;
    if (btn.textContent !== label) btn.textContent = label;
  }

  // toPay is what the chosen coupon would leave to pay, as the page can
  // tell (the server checks and computes the real discount).
  function toPay(r) {
    const c = coupons.find(c => c.coupon_id === r.el.querySelector('.coupon').value);
    const amount = r.order.amount;
    if (!c) return amount;
    if (c.type === 'percent') return amount - Math.floor(amount * c.value / 100);
    if (c.type === 'threshold' && amount < c.threshold) return amount;
    return Math.max(0, amount - c.value);
  }

  function fillCoupons(r) {
    const select = r.el.querySelector('.coupon');
    const chosen = select.value;
    const options = [['', 'No coupon'], ...coupons.map(c => [c.coupon_id, `${c.name}: ${couponValue(c)}`])];
    const now = [...select.options].map(o => o.value + '|' + o.textContent).join(',');
    if (now === options.map(o => o.join('|')).join(',')) return;
    select.replaceChildren(...options.map(([v, t]) => new Option(t, v)));
    select.value = options.some(([v]) => v === chosen) ? chosen : '';
  }

  async function pay(r) {
    const id = user();
    if (!id) return;
    r.busy = true;
    paintRow(r);
    const couponID = r.el.querySelector('.coupon').value;
    let text = 'No answer from the shop — click Pay again: it never pays twice', ok = false;
    try {
      const body = { user_id: id };
      if (couponID) body.coupon_id = couponID;
      const res = await fetch(`/orders/${r.order.order_id}/pay`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
      });
      const answer = await res.json().catch(() => ({}));
      if (res.status === 200) {
        r.order = answer;
        ok = true;
        text = answer.discount > 0 ? `Paid ${yuan(answer.to_pay)}: ${yuan(answer.discount)} off` : `Paid ${yuan(answer.to_pay)}`;
      } else {
        text = payRefusals[answer.error] || `The shop refused the payment (${answer.error || 'HTTP ' + res.status})`;
      }
    } catch { /* no answer: the generic sentence */ }
    r.busy = false;
    const out = r.el.querySelector('.outcome');
    out.textContent = text;
    out.className = 'outcome ' + (ok ? 'ok' : 'bad');
    paintRow(r);
    refresh();
    if (window.refreshCoupons) window.refreshCoupons();
  }

  async function refresh() {
    clearTimeout(timer);
    const id = user();
    if (!id) {
      list.replaceChildren();
      rows.clear();
      note.textContent = 'Enter your shopper id to see your orders.';
    } else if (!document.hidden) {
      try {
        const sent = Date.now();
        const [res, cres] = await Promise.all([
          fetch(`/users/${id}/orders`, { cache: 'no-store' }),
          fetch(`/users/${id}/coupons?status=unused`, { cache: 'no-store' }),
        ]);
        if (!res.ok) throw new Error('HTTP ' + res.status);
        const body = await res.json();
        if (cres.ok) coupons = (await cres.json()).coupons || [];
        offset = apiTime(body.server_time) - (sent + Date.now()) / 2;
        if (id === user()) render(body.orders || []);
      } catch {
        note.textContent = 'Cannot load your orders — retrying…';
      }
    }
    timer = setTimeout(refresh, ORDERS_MS);
  }

  function render(orders) {
    const seen = new Set();
    orders.forEach((o, i) => {
      seen.add(o.order_id);
      let r = rows.get(o.order_id);
      if (!r) {
        const el = rowTemplate.content.firstElementChild.cloneNode(true);
        el.dataset.orderId = o.order_id;
        r = { el, order: o, busy: false };
        el.querySelector('.pay').addEventListener('click', () => pay(r));
        el.querySelector('.coupon').addEventListener('change', () => paintRow(r));
        rows.set(o.order_id, r);
      }
      if (!r.busy) r.order = o;
      fillCoupons(r);
      paintRow(r);
      if (list.children[i] !== r.el) list.insertBefore(r.el, list.children[i] || null);
    });
    for (const [id, r] of rows) {
      if (!seen.has(id)) { r.el.remove(); rows.delete(id); }
    }
    note.textContent = orders.length ? '' : 'No orders yet.';
  }

  window.refreshOrders = refresh;
  let typing;
  shopperField.addEventListener('input', () => { clearTimeout(typing); typing = setTimeout(refresh, 300); });
  document.addEventListener('visibilitychange', () => { if (!document.hidden) refresh(); });
  setInterval(() => rows.forEach(paintRow), 250);
  refresh();
})();
