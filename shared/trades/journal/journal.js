// The trade journal: the caller's trades (GET /api/trades) with their market context and alerts,
// live over WS /ws/trades/{user_id} (docs/trades.md, "The journal page"). Every number is shown
// as the API's decimal string (textContent): nothing is parsed into a float.
"use strict";

(function () {
  const state = { token: null, user: null, trades: new Map(), context: new Map(), alerts: new Map(), cursor: "0", socket: null, retry: 0 };
  const $ = (id) => document.getElementById(id);
  const status = (text, error) => { $("status").textContent = text; $("status").className = error ? "error" : ""; };

  function subjectOf(token) {
    // Only to name the feed's path: the servers verify the token, the page does not.
    const part = token.split(".")[1];
    if (!part) throw new Error("that is not a token");
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    const sub = JSON.parse(json).sub;
    if (typeof sub !== "string") throw new Error("the token names no user");
    return sub;
  }

  function feedBase() {
    const configured = document.querySelector('meta[name="trades-feed-url"]').content;
    if (configured) return configured.replace(/\/$/, "");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.hostname}:8097`;
  }

  function cell(row, text, numeric) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (numeric) td.className = "num";
    row.appendChild(td);
    return td;
  }

  function auditText(audit) {
    if (!audit) return "";
    const flags = [];
    if (audit.is_honeypot) flags.push("honeypot");
    if (audit.buy_tax !== null) flags.push(`buy tax ${audit.buy_tax}`);
    if (audit.sell_tax !== null) flags.push(`sell tax ${audit.sell_tax}`);
    return `score ${audit.score}` + (flags.length ? ` (${flags.join(", ")})` : "");
  }

  function alertsOf(tradeId) {
    return [...state.alerts.values()].filter((a) => (a.trade_ids || []).includes(tradeId)).map((a) => a.rule);
  }

  function render(freshId) {
    const body = $("trades").querySelector("tbody");
    body.replaceChildren();
    const trades = [...state.trades.values()].filter((t) => t.status !== "superseded");
    trades.sort((a, b) => (a.entry_time < b.entry_time ? 1 : a.entry_time > b.entry_time ? -1 : 0));
    for (const t of trades) {
      const row = document.createElement("tr");
      row.dataset.tradeId = t.trade_id;
      const ctx = state.context.get(t.trade_id) || {};
      const entry = ctx.entry || {};
      const candle = entry.candle_1m;
      const rules = alertsOf(t.trade_id);
      cell(row, t.entry_time);
      cell(row, t.symbol);
      cell(row, t.side);
      cell(row, t.quantity, true);
      cell(row, t.entry_price, true);
      cell(row, t.exit_price, true);
      cell(row, t.pnl, true);
      // open / closed; the enrichment's state only when it is not plain "enriched" (pending_market)
      cell(row, ctx.status && ctx.status !== "enriched" ? `${t.status} (${ctx.status})` : t.status).dataset.field = "status";
      cell(row, entry.market_price_usdt, true).dataset.field = "market";
      cell(row, entry.slippage_bps, true).dataset.field = "slippage";
      cell(row, candle ? `${candle.open} / ${candle.high} / ${candle.low} / ${candle.close}` : "", true).dataset.field = "candle";
      cell(row, ctx.kpis_24h ? ctx.kpis_24h.change_pct_24h : "", true);
      cell(row, ctx.volatility_24h ? ctx.volatility_24h.relative : "", true);
      cell(row, auditText(ctx.audit)).dataset.field = "audit";
      cell(row, rules.join(", ")).dataset.field = "alerts";
      if (rules.length) row.classList.add("alerted");
      if (t.trade_id === freshId) row.classList.add("fresh");
      body.appendChild(row);
    }
    const alertBody = $("alerts").querySelector("tbody");
    alertBody.replaceChildren();
    const alerts = [...state.alerts.values()].sort((a, b) => (a.occurred_at < b.occurred_at ? 1 : -1));
    for (const a of alerts) {
      const row = document.createElement("tr");
      row.dataset.alertId = a.alert_id;
      cell(row, a.occurred_at);
      cell(row, a.rule);
      cell(row, a.symbol);
      cell(row, a.message);
      cell(row, (a.trade_ids || []).length);
      alertBody.appendChild(row);
    }
  }

  function onItem(item) {
    state.cursor = item.cursor;
    let fresh = null;
    if (item.kind === "trade") {
      const record = item.record;
      state.trades.set(record.trade.trade_id, record.trade);
      state.context.set(record.trade.trade_id, record);
      fresh = record.trade.trade_id;
    } else if (item.kind === "alert") {
      state.alerts.set(item.record.alert_id, item.record);
    }
    render(fresh);
    status(`Live: ${state.trades.size} trades, ${state.alerts.size} alerts (cursor ${state.cursor}).`);
  }

  function follow() {
    // The token travels as a subprotocol (browsers cannot set headers on a WebSocket), never in the URL.
    const url = `${feedBase()}/ws/trades/${encodeURIComponent(state.user)}?cursor=${encodeURIComponent(state.cursor)}`;
    const socket = new WebSocket(url, ["trades.feed.v1", `bearer.${state.token}`]);
    state.socket = socket;
    let opened = false;
    socket.onopen = () => { opened = true; state.retry = 0; status(`Live (cursor ${state.cursor}).`); };
    socket.onmessage = (event) => onItem(JSON.parse(event.data));
    socket.onclose = (event) => {
      if (state.socket !== socket) return;
      if (event.code === 4401) { status("Your token has expired: enter a new one.", true); return; }
      if (!opened && state.retry >= 3) { status("The live feed refused this token (or is unreachable).", true); return; }
      // Reconnect from the last cursor: nothing missed, nothing twice.
      state.retry += 1;
      setTimeout(follow, Math.min(10000, 500 * 2 ** state.retry));
      status(`Reconnecting from cursor ${state.cursor}...`);
    };
  }

  async function open(token) {
    state.token = token.trim();
    state.trades.clear(); state.context.clear(); state.alerts.clear(); state.cursor = "0"; state.retry = 0;
    if (state.socket) { const s = state.socket; state.socket = null; s.close(); }
    try {
      state.user = subjectOf(state.token);
    } catch (err) {
      status(err.message, true);
      return;
    }
    const answer = await fetch("/api/trades?limit=1000", { headers: { Authorization: `Bearer ${state.token}` }, cache: "no-store" });
    if (!answer.ok) {
      const reason = (await answer.json().catch(() => ({}))).error || answer.statusText;
      status(`The trades API refused: ${answer.status} ${reason}`, true);
      return;
    }
    for (const t of (await answer.json()).trades) state.trades.set(t.trade_id, t);
    render(null);
    status(`${state.trades.size} trades; connecting to the live feed...`);
    follow();
  }

  $("login").addEventListener("submit", (event) => { event.preventDefault(); open($("token").value); });
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("token")) {
    // Out of the address bar and history once read.
    history.replaceState(null, "", location.pathname);
    open(fragment.get("token"));
  }
})();
