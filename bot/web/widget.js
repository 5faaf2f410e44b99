/*
 * Career partner chat widget. One tag on any page:
 *   <script src="https://HOST/widget.js" data-title="キャリア相談" data-accent="#0b6e4f" defer></script>
 * Optional: data-api (API origin, default: where this file came from), data-position ("right" | "left"),
 * data-open ("true": open on load). Vanilla JavaScript, no dependencies, no build step.
 *
 * Rules this file keeps:
 * - Everything lives in a Shadow DOM: the page's CSS cannot reach in, ours cannot leak out.
 * - User and model text is only ever set with textContent / attributes (never innerHTML).
 * - Enter sends, except during IME composition (変換確定); Shift+Enter is a new line.
 */
(function () {
  "use strict";

  if (window.__careerPartnerWidget) return;
  window.__careerPartnerWidget = true;

  var script =
    document.currentScript ||
    (function () {
      var all = document.querySelectorAll("script[src*='widget.js']");
      return all[all.length - 1] || null;
    })();
  var data = (script && script.dataset) || {};

  function apiBase() {
    var base = data.api || (script && script.src ? new URL(script.src, location.href).origin : location.origin);
    return String(base).replace(/\/+$/, "");
  }

  var CFG = {
    title: (data.title || "キャリア相談パートナー").slice(0, 60),
    accent: /^#[0-9a-fA-F]{6}$/.test(data.accent || "") ? data.accent : /^#[0-9a-fA-F]{3}$/.test(data.accent || "") ? expand3(data.accent) : "#0b6e4f",
    api: apiBase(),
    position: data.position === "left" ? "left" : "right",
    openOnLoad: data.open === "true",
    maxChars: 2000,
    pollMs: 3000,
  };

  var HEAD = { direct: "ご質問への答え", analysis: "現状分析", plan: "アクションプラン", strategy: "キャリア戦略", legal: "法律のポイント（一般的な情報）", sources: "参考にした記事" };
  var LEGAL_NOTE = "いずれも一般的な情報です。ご自分のケースに当てはまるかどうかは、労働条件のことなら総合労働相談コーナー（都道府県労働局・労働基準監督署内）、雇用保険や給付のことならハローワークなど、公的な窓口で確かめられます。";
  var STARTERS = ["急な引き継ぎで顧客対応が追いつかない", "残業が続いて疲れている", "転職するか迷っている"];
  var WELCOME =
    "こんにちは。仕事で困っていること、モヤモヤしていることを、ひとことからでも書いてください。状況を整理して、明日からできることを一緒に考えます。";

  // ----- storage (localStorage can throw in private modes: fall back to memory) ---------------------------------
  var memory = {};
  var PREFIX = "careerPartner:" + CFG.api + ":";
  function load(key, fallback) {
    try {
      var raw = window.localStorage.getItem(PREFIX + key);
      return raw === null ? fallback : JSON.parse(raw);
    } catch (e) {
      return Object.prototype.hasOwnProperty.call(memory, key) ? memory[key] : fallback;
    }
  }
  function save(key, value) {
    memory[key] = value;
    try {
      if (value === null || value === undefined) window.localStorage.removeItem(PREFIX + key);
      else window.localStorage.setItem(PREFIX + key, JSON.stringify(value));
    } catch (e) {
      /* memory only */
    }
  }
  function sessionFlag(key, value) {
    try {
      if (value === undefined) return window.sessionStorage.getItem(PREFIX + key) === "1";
      if (value) window.sessionStorage.setItem(PREFIX + key, "1");
      else window.sessionStorage.removeItem(PREFIX + key);
    } catch (e) {
      return false;
    }
    return value;
  }

  function visitorToken() {
    var token = load("visitor", null);
    if (typeof token === "string" && /^[A-Za-z0-9_-]{32,128}$/.test(token)) return token;
    var bytes = new Uint8Array(32);
    window.crypto.getRandomValues(bytes);
    token = btoa(String.fromCharCode.apply(null, bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    save("visitor", token);
    return token;
  }

  // ----- colours: keep WCAG AA whatever accent the operator picks --------------------------------------------------
  function expand3(hex) {
    return "#" + hex[1] + hex[1] + hex[2] + hex[2] + hex[3] + hex[3];
  }
  function rgb(hex) {
    return [1, 3, 5].map(function (i) {
      return parseInt(hex.slice(i, i + 2), 16);
    });
  }
  function luminance(hex) {
    var c = rgb(hex).map(function (v) {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  }
  function contrast(a, b) {
    var la = luminance(a),
      lb = luminance(b);
    return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
  }
  function darken(hex, f) {
    return (
      "#" +
      rgb(hex)
        .map(function (v) {
          return ("0" + Math.round(v * f).toString(16)).slice(-2);
        })
        .join("")
    );
  }
  var onAccent = contrast(CFG.accent, "#ffffff") >= contrast(CFG.accent, "#111111") ? "#ffffff" : "#111111";
  var accentText = CFG.accent;
  for (var i = 0; i < 20 && contrast(accentText, "#ffffff") < 4.6; i++) accentText = darken(accentText, 0.88);

  // ----- DOM helpers (no innerHTML anywhere) ------------------------------------------------------------------------
  function h(tag, props) {
    var el = document.createElement(tag);
    var p = props || {};
    Object.keys(p).forEach(function (k) {
      var v = p[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
      else if (k === "hidden") el.hidden = true;
      else el.setAttribute(k, v === true ? "" : String(v));
    });
    for (var j = 2; j < arguments.length; j++) append(el, arguments[j]);
    return el;
  }
  function append(el) {
    for (var k = 1; k < arguments.length; k++) {
      var child = arguments[k];
      if (child === null || child === undefined || child === false) continue;
      if (Array.isArray(child)) child.forEach(function (c) { append(el, c); });
      else el.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
  }
  function svg(path, size) {
    var ns = "http://www.w3.org/2000/svg";
    var s = document.createElementNS(ns, "svg");
    s.setAttribute("viewBox", "0 0 24 24");
    s.setAttribute("width", String(size || 22));
    s.setAttribute("height", String(size || 22));
    s.setAttribute("aria-hidden", "true");
    s.setAttribute("focusable", "false");
    var p = document.createElementNS(ns, "path");
    p.setAttribute("d", path);
    p.setAttribute("fill", "currentColor");
    s.appendChild(p);
    return s;
  }
  var ICON_CHAT = "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zm3 6a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z";
  var ICON_CLOSE = "M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6z";
  var ICON_SEND = "M3 20.5 21 12 3 3.5l.01 6.6L15 12 3.01 13.9z";
  var ICON_UP = "M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z";
  var ICON_DOWN = "M15 3H6c-.83 0-1.54.5-1.84 1.22l-3.02 7.05c-.09.23-.14.47-.14.73v2c0 1.1.9 2 2 2h6.31l-.95 4.57-.03.32c0 .41.17.79.44 1.06L9.83 23l6.59-6.59c.36-.36.58-.86.58-1.41V5c0-1.1-.9-2-2-2zm4 0v12h4V3h-4z";
  var ICON_PHONE = "M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2a1 1 0 0 1 1-.25 11.4 11.4 0 0 0 3.6.57 1 1 0 0 1 1 1V20a1 1 0 0 1-1 1A17 17 0 0 1 3 4a1 1 0 0 1 1-1h3.5a1 1 0 0 1 1 1c0 1.25.2 2.45.57 3.57a1 1 0 0 1-.25 1z";

  // ----- styles ---------------------------------------------------------------------------------------------------
  var CSS = [
    ":host{all:initial}",
    "*,*::before,*::after{box-sizing:border-box}",
    ".root{--accent:" + CFG.accent + ";--on-accent:" + onAccent + ";--accent-text:" + accentText + ";",
    "font-family:system-ui,-apple-system,'Hiragino Sans','Hiragino Kaku Gothic ProN','Noto Sans CJK JP','Noto Sans JP','Yu Gothic UI','Meiryo',sans-serif;",
    "font-size:15px;line-height:1.7;color:#1f2328;letter-spacing:normal;text-align:left;-webkit-text-size-adjust:100%}",
    ".sr{position:absolute!important;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);white-space:nowrap;border:0}",
    "button,textarea,input{font:inherit;color:inherit;letter-spacing:normal;text-transform:none}",
    "button{cursor:pointer}",
    ":focus-visible{outline:3px solid #1a56db;outline-offset:2px}",
    ".launcher{position:fixed;bottom:calc(20px + env(safe-area-inset-bottom,0px));z-index:2147483000;display:flex;align-items:center;gap:8px;",
    "min-height:52px;padding:0 20px 0 16px;border:0;border-radius:999px;background:var(--accent);color:var(--on-accent);font-size:16px;font-weight:700;",
    "box-shadow:0 6px 20px rgba(0,0,0,.25)}",
    ".right .launcher{right:calc(20px + env(safe-area-inset-right,0px))}.left .launcher{left:calc(20px + env(safe-area-inset-left,0px))}",
    ".launcher:hover{filter:brightness(1.08)}",
    ".panel{position:fixed;bottom:calc(84px + env(safe-area-inset-bottom,0px));z-index:2147483001;width:400px;max-width:calc(100vw - 32px);",
    "height:min(680px,calc(100vh - 110px));display:flex;flex-direction:column;background:#fff;border-radius:16px;overflow:hidden;",
    "box-shadow:0 12px 40px rgba(0,0,0,.28);border:1px solid #d0d7de}",
    ".panel[hidden]{display:none}",
    ".right .panel{right:calc(20px + env(safe-area-inset-right,0px))}.left .panel{left:calc(20px + env(safe-area-inset-left,0px))}",
    ".header{display:flex;align-items:center;gap:6px;padding:10px 8px 10px 16px;background:var(--accent);color:var(--on-accent)}",
    ".header h2{flex:1;margin:0;font-size:16px;font-weight:700;line-height:1.4;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}",
    ".hbtn{display:inline-flex;align-items:center;justify-content:center;min-width:44px;min-height:44px;padding:0 10px;border:1px solid transparent;",
    "border-radius:8px;background:transparent;color:inherit;font-size:14px;font-weight:700}",
    ".hbtn:hover{background:rgba(127,127,127,.2)}",
    ".hbtn.new{border-color:currentColor}",
    ".header :focus-visible{outline-color:var(--on-accent)}",
    ".banner{padding:8px 16px;font-size:14px;background:#fff8c5;color:#3b2e00;border-bottom:1px solid #d4a72c}",
    ".banner[hidden]{display:none}",
    ".log{flex:1;overflow-y:auto;overscroll-behavior:contain;padding:16px 14px 8px;background:#f6f8fa;position:relative}",
    ".msg{margin:0 0 14px;max-width:100%}",
    ".user{display:flex;justify-content:flex-end}",
    ".user .bubble{max-width:85%;background:var(--accent);color:var(--on-accent);border-radius:14px 14px 4px 14px;padding:9px 13px;",
    "white-space:pre-wrap;overflow-wrap:anywhere}",
    ".bot .bubble{background:#fff;border:1px solid #d0d7de;border-radius:14px 14px 14px 4px;padding:12px 14px;overflow-wrap:anywhere}",
    ".bot .who{font-size:12px;color:#57606a;margin:0 0 2px 4px}",
    ".consultant .bubble{background:#eef6ff;border-color:#54aeff}",
    ".held{margin:-8px 0 14px;text-align:right;font-size:12px;color:#57606a}",
    ".empathy{margin:0 0 8px;white-space:pre-wrap}",
    ".bubble h3{margin:14px 0 6px;font-size:15px;color:var(--accent-text);border-left:4px solid var(--accent);padding-left:8px;line-height:1.4}",
    ".bubble h4{margin:10px 0 4px;font-size:14px;line-height:1.5}",
    ".bubble ul{margin:0;padding:0 0 0 1.2em}",
    ".bubble li{margin:0 0 6px}",
    ".bubble ul.checklist{list-style:none;padding:0}",
    ".checklist label{display:flex;gap:8px;align-items:flex-start;cursor:pointer}",
    ".checklist input{flex:none;width:20px;height:20px;margin:3px 0 0;accent-color:var(--accent-text)}",
    ".checklist input:checked+span{color:#57606a;text-decoration:line-through}",
    ".escalation{margin:0 0 10px;padding:12px;border:2px solid #b42318;border-radius:12px;background:#fff1f0;color:#3d0c07}",
    ".escalation h3{color:#8a1c12;border-left-color:#b42318;margin-top:0}",
    ".escalation p{margin:0 0 8px;white-space:pre-wrap}",
    ".escalation ul{list-style:none;padding:0}",
    ".escalation li{padding:8px 0;border-top:1px solid #f3c5c0}",
    ".escalation .name{display:block;font-weight:700}",
    ".tel{display:inline-flex;align-items:center;gap:6px;margin:4px 0;padding:6px 14px;border-radius:999px;background:#b42318;color:#fff;",
    "font-size:17px;font-weight:700;text-decoration:none}",
    ".tel:focus-visible{outline-color:#1a56db}",
    ".hours{display:block;font-size:13px}",
    "a{color:var(--accent-text)}",
    ".escalation a:not(.tel){color:#8a1c12}",
    ".jobs{margin:4px 0 0}",
    ".job{margin:0 0 10px;padding:10px 12px;border:1px solid #d0d7de;border-radius:12px;background:#fff}",
    ".job h4{margin:0 0 2px;font-size:15px}",
    ".job .company{margin:0 0 6px;font-size:14px}",
    ".job dl{display:grid;grid-template-columns:auto 1fr;gap:2px 10px;margin:0 0 6px;font-size:13.5px}",
    ".job dt{color:#57606a}.job dd{margin:0}",
    ".job .summary{margin:0 0 6px;font-size:13px;color:#57606a}",
    ".job .src{margin:0;font-size:12px;color:#57606a}",
    ".job .sample{display:inline-block;margin:0 0 4px;padding:1px 8px;border-radius:999px;background:#fff8c5;color:#3b2e00;font-size:12px;font-weight:700}",
    ".job a.open{display:inline-block;margin-top:6px;font-weight:700}",
    ".jobs .note{font-size:12.5px;color:#57606a;margin:4px 0}",
    ".sources{margin-top:12px;font-size:13px;color:#57606a}",
    ".sources ul{padding-left:1.2em}",
    ".chips{display:flex;flex-wrap:wrap;gap:8px;margin:10px 0 0}",
    ".chip{min-height:40px;padding:6px 14px;border:1.5px solid var(--accent-text);border-radius:999px;background:#fff;color:var(--accent-text);",
    "font-size:14px;font-weight:600;text-align:left}",
    ".chip:hover:not([disabled]){background:var(--accent);color:var(--on-accent);border-color:var(--accent)}",
    ".chip[disabled]{opacity:.55;cursor:default}",
    ".feedback{display:flex;flex-wrap:wrap;align-items:center;gap:6px;margin-top:12px;padding-top:8px;border-top:1px dashed #d0d7de;",
    "font-size:13px;color:#57606a}",
    ".fb{display:inline-flex;align-items:center;gap:4px;min-height:36px;padding:4px 10px;border:1px solid #8c959f;border-radius:8px;background:#fff;color:#1f2328;font-size:13px}",
    ".fb[aria-pressed='true']{background:#ddf4ff;border-color:#0969da}",
    ".fbform{display:flex;gap:6px;width:100%}",
    ".fbform textarea{flex:1;min-height:40px;font-size:16px;padding:6px;border:1px solid #8c959f;border-radius:8px;resize:vertical}",
    ".typing{display:inline-flex;align-items:center;gap:8px;color:#57606a;font-size:14px}",
    ".dots{display:inline-flex;gap:4px}",
    ".dots i{width:7px;height:7px;border-radius:50%;background:#57606a;animation:blink 1.2s infinite ease-in-out}",
    ".dots i:nth-child(2){animation-delay:.2s}.dots i:nth-child(3){animation-delay:.4s}",
    "@keyframes blink{0%,80%,100%{opacity:.25}40%{opacity:1}}",
    "@media (prefers-reduced-motion:reduce){.dots i{animation:none;opacity:.7}}",
    ".error{margin-top:8px;padding:10px;border-radius:10px;background:#fff1f0;border:1px solid #cf222e;color:#82071e}",
    ".error p{margin:0 0 6px}",
    ".btn{min-height:40px;padding:6px 16px;border:0;border-radius:8px;background:var(--accent);color:var(--on-accent);font-weight:700;font-size:14px}",
    ".btn[disabled]{opacity:.6;cursor:default}",
    ".btn.secondary{background:#fff;color:#1f2328;border:1px solid #8c959f}",
    ".linkbtn{padding:0;border:0;background:none;color:var(--accent-text);text-decoration:underline;font-size:inherit;cursor:pointer}",
    ".notice{margin:0 0 14px;padding:12px 14px;border-radius:12px;background:#fff;border:1px solid #d0d7de;font-size:13.5px}",
    ".notice h3{margin:0 0 6px;font-size:15px}",
    ".notice ul{margin:0 0 8px;padding-left:1.2em}",
    ".notice li{margin:0 0 4px}",
    ".row{display:flex;flex-wrap:wrap;gap:8px;align-items:center}",
    ".confirm{margin:0 0 14px;padding:12px 14px;border-radius:12px;background:#fff;border:2px solid #cf222e}",
    ".confirm p{margin:0 0 8px}",
    ".composer{display:flex;gap:8px;align-items:flex-end;padding:10px 12px 6px;border-top:1px solid #d0d7de;background:#fff}",
    ".composer textarea{flex:1;min-height:46px;max-height:160px;padding:10px 12px;border:1.5px solid #8c959f;border-radius:12px;",
    "font-size:16px;line-height:1.5;resize:none;background:#fff}",
    ".composer textarea:focus{border-color:var(--accent-text)}",
    ".send{display:inline-flex;align-items:center;justify-content:center;gap:4px;min-width:64px;min-height:46px;padding:0 12px;border:0;",
    "border-radius:12px;background:var(--accent);color:var(--on-accent);font-size:15px;font-weight:700}",
    ".send[aria-disabled='true']{opacity:.55;cursor:not-allowed}",
    ".foot{display:flex;justify-content:space-between;gap:8px;padding:2px 14px calc(8px + env(safe-area-inset-bottom,0px));background:#fff;",
    "font-size:12px;color:#57606a}",
    ".count{font-variant-numeric:tabular-nums}",
    ".count.over{color:#cf222e;font-weight:700}",
    "@media (max-width:479.98px){",
    ".panel{inset:0;width:100%;max-width:none;height:100%;height:100dvh;border-radius:0;border:0;",
    "padding:env(safe-area-inset-top,0px) env(safe-area-inset-right,0px) 0 env(safe-area-inset-left,0px)}",
    ".right .panel,.left .panel{right:0;left:0;bottom:0}",
    ".root.open .launcher{display:none}",
    ".user .bubble{max-width:92%}",
    "}",
  ].join("\n");

  // ----- state ------------------------------------------------------------------------------------------------------
  var state = {
    token: visitorToken(),
    conversationId: load("conversation", null),
    busy: false,
    historyLoaded: false,
    // A consultant's conversation: the newest turn id shown, and the timer that asks the server for new turns.
    lastTurnId: 0,
    handoffTimer: null,
    retryTimer: null,
  };

  // ----- build the widget ---------------------------------------------------------------------------------------------
  var host = document.createElement("career-partner-chat");
  host.style.setProperty("all", "initial", "important");
  var shadow = host.attachShadow({ mode: "open" });
  append(shadow, h("style", { text: CSS }));

  var launcher = h(
    "button",
    { class: "launcher", type: "button", "aria-expanded": "false", "aria-controls": "cp-panel", "aria-haspopup": "dialog" },
    svg(ICON_CHAT),
    h("span", { text: "相談する" })
  );
  var title = h("h2", { id: "cp-title", text: CFG.title });
  var newButton = h("button", { class: "hbtn new", type: "button", text: "新しい相談" });
  var closeButton = h("button", { class: "hbtn close", type: "button", "aria-label": "チャットを閉じる" }, svg(ICON_CLOSE));
  var offline = h("div", { class: "banner offline", role: "status", hidden: true }, "オフラインです。インターネットに接続すると送信できます。");
  var log = h("div", { class: "log", id: "cp-log", role: "region", "aria-label": "会話", tabindex: "0" });
  var live = h("div", { class: "sr", "aria-live": "polite", "aria-atomic": "true", id: "cp-live" });
  var alertLive = h("div", { class: "sr", role: "alert", id: "cp-alert" });
  var input = h("textarea", {
    id: "cp-input",
    rows: "1",
    placeholder: "困っていることを書いてください",
    "aria-describedby": "cp-hint cp-count",
    enterkeyhint: "send",
    autocomplete: "off",
  });
  var sendButton = h("button", { class: "send", type: "submit", "aria-label": "送信" }, svg(ICON_SEND), h("span", { text: "送信", "aria-hidden": "true" }));
  var counter = h("span", { class: "count", id: "cp-count", "aria-live": "polite" });
  var form = h(
    "form",
    { class: "composer", novalidate: true },
    h("label", { class: "sr", for: "cp-input", text: "相談内容" }),
    input,
    sendButton
  );
  var aboutButton = h("button", { class: "linkbtn", type: "button", text: "AIについて・データの削除" });
  var foot = h("div", { class: "foot" }, h("span", { id: "cp-hint", text: "Enterで送信／Shift+Enterで改行" }), counter, aboutButton);
  var panel = h(
    "section",
    { class: "panel", id: "cp-panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "cp-title", hidden: true },
    h("div", { class: "header" }, title, newButton, closeButton),
    offline,
    log,
    form,
    foot,
    live,
    alertLive
  );
  var root = h("div", { class: "root " + CFG.position }, launcher, panel);
  append(shadow, root);

  function mount() {
    document.body.appendChild(host);
    if (CFG.openOnLoad || sessionFlag("open")) openPanel(false);
  }

  // ----- API --------------------------------------------------------------------------------------------------------
  function ApiError(status, message, retryAfter) {
    this.status = status;
    this.message = message;
    this.retryAfter = retryAfter;
  }
  function headers(json) {
    var hd = { "X-Visitor-Token": state.token };
    if (json) hd["Content-Type"] = "application/json";
    return hd;
  }
  function convPath(id, rest) {
    return CFG.api + "/api/conversations/" + encodeURIComponent(id) + (rest || "");
  }
  async function failure(res) {
    var message = "";
    try {
      var body = await res.json();
      message = body && typeof body.message === "string" ? body.message : "";
    } catch (e) {
      /* not JSON */
    }
    var retry = parseInt(res.headers.get("Retry-After") || "", 10);
    if (!message) message = res.status >= 500 ? "サーバーで問題が起きました。少し時間をおいてからもう一度お試しください。" : "送信できませんでした。";
    return new ApiError(res.status, message, isNaN(retry) ? null : retry);
  }
  async function request(method, url, body) {
    var res;
    try {
      res = await fetch(url, { method: method, headers: headers(body !== undefined), body: body === undefined ? undefined : JSON.stringify(body), mode: "cors", credentials: "omit" });
    } catch (e) {
      throw networkError();
    }
    if (!res.ok) throw await failure(res);
    return res.status === 204 ? null : res.json();
  }
  function networkError() {
    return new ApiError(
      0,
      navigator.onLine === false
        ? "オフラインのため送信できませんでした。接続を確認してから、もう一度お試しください。"
        : "サーバーに接続できませんでした。通信環境を確認して、もう一度お試しください。",
      null
    );
  }
  async function ensureConversation() {
    if (state.conversationId) return state.conversationId;
    var made = await request("POST", CFG.api + "/api/conversations");
    setConversation(made.conversation_id);
    return state.conversationId;
  }
  function setConversation(id) {
    state.conversationId = id;
    save("conversation", id);
    if (id) {
      var all = load("conversations", []);
      if (all.indexOf(id) < 0) all.push(id);
      save("conversations", all.slice(-100));
    }
  }

  // ----- rendering an answer ---------------------------------------------------------------------------------------
  function telHref(contact) {
    var c = String(contact).trim();
    if (!/^[#0-9][0-9\-\s()]{1,20}$/.test(c)) return null;
    return "tel:" + c.replace(/[^0-9#]/g, "").replace("#", "%23");
  }
  function safeUrl(url) {
    try {
      var u = new URL(url, CFG.api);
      return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
    } catch (e) {
      return null;
    }
  }
  function splitLead(text) {
    var m = /^([^：:]{1,24})[：:](.+)$/s.exec(text);
    return m ? [m[1], m[2]] : [null, text];
  }

  var SECTIONS = {
    escalation: function (esc) {
      var box = h("div", { class: "escalation", role: "note", "aria-label": "相談窓口のご案内" });
      append(box, h("h3", { text: "ひとりで抱えずに、相談窓口へ" }));
      if (esc.message) append(box, h("p", { text: esc.message }));
      var list = h("ul");
      (esc.resources || []).forEach(function (r) {
        var href = telHref(r.contact);
        var li = h("li", null, h("span", { class: "name", text: r.name }));
        if (href) append(li, h("a", { class: "tel", href: href, "aria-label": r.name + "に電話する " + r.contact }, svg(ICON_PHONE), r.contact));
        else append(li, h("span", { class: "contact", text: r.contact }));
        if (r.hours) append(li, h("span", { class: "hours", text: r.hours }));
        var url = r.url && safeUrl(r.url);
        if (url) append(li, h("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: "公式サイトを開く" }));
        append(list, li);
      });
      append(box, list);
      return box;
    },
    empathy: function (text) {
      return h("p", { class: "empathy", text: text });
    },
    direct_answer: function (d) {
      return h(
        "div",
        { class: "part direct" },
        h("h3", { text: HEAD.direct }),
        h("p", { class: "question", text: "Q. " + d.question }),
        h("p", { text: "A. " + d.answer })
      );
    },
    situation_analysis: function (items) {
      return h(
        "div",
        { class: "part analysis" },
        h("h3", { text: HEAD.analysis }),
        h("p", { class: "note", text: "このようなお悩みの背景によくある原因です。当てはまるものがあるか、確かめてみてください。" }),
        h("ul", null, items.map(function (p) {
          return h("li", null, p.title ? h("strong", { text: p.title + "：" }) : null, p.detail);
        }))
      );
    },
    action_plan: function (groups, ctx) {
      var wrap = h("div", { class: "part plan" }, h("h3", { text: HEAD.plan }));
      groups.forEach(function (g, gi) {
        append(wrap, h("h4", { text: gi + 1 + ". " + g.title }));
        var list = h("ul", { class: "checklist", "aria-label": g.title + "のステップ" });
        g.steps.forEach(function (step) {
          var parts = splitLead(step);
          var box = h("input", { type: "checkbox" });
          box.checked = isDone(ctx.conversationId, step);
          box.addEventListener("change", function () {
            markStep(ctx.conversationId, step, box.checked);
          });
          append(list, h("li", null, h("label", null, box, h("span", null, parts[0] ? h("strong", { text: parts[0] + "：" }) : null, parts[1]))));
        });
        append(wrap, list);
      });
      return wrap;
    },
    career_strategy: function (items) {
      return h(
        "div",
        { class: "part strategy" },
        h("h3", { text: HEAD.strategy }),
        h("ul", null, items.map(function (p) {
          return h("li", null, p.title ? h("strong", { text: p.title + "：" }) : null, p.detail);
        }))
      );
    },
    legal_points: function (points) {
      return h(
        "div",
        { class: "part legal" },
        h("h3", { text: HEAD.legal }),
        h("ul", null, points.map(function (p) { return h("li", { text: p }); })),
        h("p", { class: "note", text: LEGAL_NOTE })
      );
    },
    jobs: function (view) {
      // The job search: the postings as cards (every field is the imported posting's own), the notes, and when
      // nothing fits a link to the public job search. Text only through textContent; links only http(s).
      if (!view.postings || !view.postings.length) {
        var url0 = view.fallback && safeUrl(view.fallback.url);
        if (!url0) return null;
        return h("p", { class: "jobs" }, h("a", { href: url0, target: "_blank", rel: "noopener noreferrer", text: view.fallback.name }));
      }
      var wrap = h("div", { class: "jobs", role: "list", "aria-label": "求人" });
      view.postings.forEach(function (p) {
        var url = safeUrl(p.url);
        var rows = h("dl", null,
          h("dt", { text: "勤務地" }), h("dd", { text: p.place }),
          h("dt", { text: "給与" }), h("dd", { text: p.salary || "掲載元で確認" }),
          h("dt", { text: "雇用形態" }), h("dd", { text: p.employment_type || "掲載元で確認" }));
        append(wrap, h("article", { class: "job", role: "listitem" },
          p.sample ? h("span", { class: "sample", text: "サンプル求人（架空）" }) : null,
          h("h4", { text: p.title }),
          h("p", { class: "company", text: p.company }),
          rows,
          p.summary ? h("p", { class: "summary", text: p.summary }) : null,
          h("p", { class: "src", text: p.source + (p.valid_through ? "　" + p.valid_through : "") }),
          url ? h("a", { class: "open", href: url, target: "_blank", rel: "noopener noreferrer", text: "詳しく見る", "aria-label": p.title + "の求人を開く" }) : null));
      });
      (view.notes || []).forEach(function (n) { append(wrap, h("p", { class: "note", text: n })); });
      return wrap;
    },
    sources: function (sources) {
      // Only the articles the answer was built from (the rest of the ranking is for programs, not people).
      var cited = sources.filter(function (s) { return s.cited; });
      if (!cited.length) return null;
      return h(
        "div",
        { class: "sources" },
        h("span", { text: HEAD.sources + "：" }),
        h("ul", null, cited.map(function (s) {
          var url = s.url && safeUrl(s.url);
          return h("li", null, url ? h("a", { href: url, target: "_blank", rel: "noopener", text: s.title }) : s.title);
        }))
      );
    },
    alternatives: function (names) {
      return h(
        "div",
        { class: "chips alternatives", role: "group", "aria-label": "もしかして" },
        h("p", { class: "note", text: "もしかして、こちらのお悩みでしたか？" }),
        names.map(function (text) {
          return h("button", { class: "chip", type: "button", text: text, onclick: function () { send(text); } });
        })
      );
    },
    follow_ups: function (chips) {
      return h(
        "div",
        { class: "chips", role: "group", "aria-label": "次に聞けること" },
        chips.map(function (text) {
          return h("button", { class: "chip", type: "button", text: text, onclick: function () { send(text); } });
        })
      );
    },
  };
  var ORDER = ["escalation", "empathy", "jobs", "direct_answer", "situation_analysis", "action_plan", "career_strategy", "legal_points", "sources", "alternatives", "follow_ups"];

  function renderSection(bubble, name, value, ctx) {
    var make = SECTIONS[name];
    if (!make || value === null || value === undefined || (Array.isArray(value) && !value.length)) return;
    var el = make(value, ctx);
    if (!el) return;
    el.setAttribute("data-section", name);
    var old = bubble.querySelector("[data-section='" + name + "']");
    if (old) old.replaceWith(el);
    else bubble.appendChild(el);
  }
  function renderAnswer(bubble, answer, turnId, conversationId) {
    bubble.textContent = "";
    var ctx = { conversationId: conversationId };
    // A labour-law question's general rule first, then the note and the help lines (Answer.reply_before_help).
    var order = ORDER;
    if (answer.direct_answer && answer.escalation && answer.escalation.kind === "labor-law" && answer.safety_tier === "escalation") {
      order = ["direct_answer"].concat(ORDER.filter(function (name) { return name !== "direct_answer"; }));
    }
    order.forEach(function (name) {
      renderSection(bubble, name, answer[name], ctx);
    });
    if (turnId > 0 && answer.kind !== "clarify") append(bubble, feedbackRow(turnId, conversationId));
  }

  function botMessage() {
    var bubble = h("div", { class: "bubble" });
    var msg = h("div", { class: "msg bot" }, h("p", { class: "who", text: CFG.title }), bubble);
    log.appendChild(msg);
    return { msg: msg, bubble: bubble };
  }
  // A career consultant's reply (written in the operators' console): plain text, labelled as a person's.
  function consultantMessage(text) {
    var bubble = h("div", { class: "bubble" }, h("p", { class: "empathy", text: text }));
    var msg = h("div", { class: "msg bot consultant" }, h("p", { class: "who", text: "キャリアコンサルタント" }), bubble);
    log.appendChild(msg);
    return msg;
  }

  // ----- a consultant holds the conversation: ask for new turns until the handoff ends --------------------------
  function seen(id) {
    if (id > state.lastTurnId) state.lastTurnId = id;
  }
  function watchHandoff(handoff) {
    var open = !!(handoff && handoff.status !== "closed");
    if (open && !state.handoffTimer) {
      state.handoffTimer = window.setInterval(pollHandoff, Math.max(1000, CFG.pollMs || 3000));
    } else if (!open && state.handoffTimer) {
      window.clearInterval(state.handoffTimer);
      state.handoffTimer = null;
    }
  }
  async function pollHandoff() {
    var id = state.conversationId;
    if (!id || state.busy || state.polling) return;
    state.polling = true;
    try {
      var history = await request("GET", convPath(id, "/messages?after=" + state.lastTurnId));
      if (id !== state.conversationId) return;
      var latest = null;
      history.messages.forEach(function (m) {
        if (m.id <= state.lastTurnId) return;
        seen(m.id);
        if (m.role === "consultant") {
          consultantMessage(m.text);
          announce("キャリアコンサルタントから返信がありました。" + m.text);
        } else if (m.role === "bot") {
          latest = botMessage();
          if (m.answer) renderAnswer(latest.bubble, m.answer, m.id, id);
          else append(latest.bubble, h("p", { class: "empathy", text: m.text }));
          if (m.answer) announceAnswer(m.answer);
        }
      });
      if (latest) disableOldChipsExcept(latest);
      if (history.messages.length) scrollToBottom();
      watchHandoff(history.handoff);
    } catch (err) {
      if (err.status === 404) watchHandoff(null);
    } finally {
      state.polling = false;
    }
  }
  function userMessage(text) {
    var msg = h("div", { class: "msg user" }, h("span", { class: "sr", text: "あなた：" }), h("div", { class: "bubble", text: text }));
    log.appendChild(msg);
    return msg;
  }
  function typing() {
    return h(
      "div",
      { class: "typing", "data-typing": "" },
      h("span", { class: "dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")),
      h("span", { text: "回答を作成しています…" })
    );
  }
  function scrollToBottom() {
    log.scrollTop = log.scrollHeight;
  }
  function scrollToMessage(msg) {
    log.scrollTop = Math.max(0, msg.offsetTop - 8);
  }
  function announce(text) {
    live.textContent = "";
    window.setTimeout(function () {
      live.textContent = text;
    }, 50);
  }
  function announceAnswer(answer) {
    var parts = ["回答が届きました。"];
    if (answer.escalation) parts.push("相談窓口の電話番号があります。");
    if (answer.empathy) parts.push(answer.empathy.slice(0, 140));
    var sections = [];
    if (answer.situation_analysis && answer.situation_analysis.length) sections.push(HEAD.analysis);
    if (answer.action_plan && answer.action_plan.length) sections.push(HEAD.plan);
    if (answer.career_strategy && answer.career_strategy.length) sections.push(HEAD.strategy);
    if (answer.legal_points && answer.legal_points.length) sections.push(HEAD.legal);
    if (sections.length) parts.push(sections.join("、") + "があります。");
    if (answer.jobs && answer.jobs.postings && answer.jobs.postings.length) parts.push("求人が" + answer.jobs.postings.length + "件あります。");
    if (answer.follow_ups && answer.follow_ups.length) parts.push("続けて聞けること：" + answer.follow_ups.join("、"));
    announce(parts.join(" "));
  }

  // ----- checklist and feedback ----------------------------------------------------------------------------------------
  function stepsKey(conversationId) {
    return "steps:" + conversationId;
  }
  function isDone(conversationId, step) {
    var map = load(stepsKey(conversationId), {});
    if (Object.prototype.hasOwnProperty.call(map, step)) return !!map[step];
    return (state.serverDone || []).indexOf(step) >= 0;
  }
  function markStep(conversationId, step, done) {
    if (!conversationId) return;
    var map = load(stepsKey(conversationId), {});
    map[step] = done;
    save(stepsKey(conversationId), map);
    if (done) request("POST", convPath(conversationId, "/steps"), { step: step.slice(0, 200) }).catch(function () {});
  }

  function feedbackRow(turnId, conversationId) {
    var key = "fb:" + conversationId + ":" + turnId;
    var row = h("div", { class: "feedback", role: "group", "aria-label": "この回答の評価" });
    if (load(key, null)) {
      append(row, h("span", { text: "評価を送信しました。ありがとうございます。" }));
      return row;
    }
    var yes = h("button", { class: "fb yes", type: "button", "aria-pressed": "false" }, svg(ICON_UP, 16), "役に立った");
    var no = h("button", { class: "fb no", type: "button", "aria-pressed": "false" }, svg(ICON_DOWN, 16), "いまひとつ");
    append(row, h("span", { text: "この回答は役に立ちましたか？" }), yes, no);
    function done(out) {
      save(key, true);
      row.textContent = "";
      append(row, h("span", { text: "評価を送信しました。ありがとうございます。" }));
      // A "not helpful" may have put the conversation in a consultant's queue: say what happens next.
      if (out && out.notice) append(row, h("p", { class: "empathy", text: out.notice }));
      announce("評価を送信しました。" + (out && out.notice ? out.notice : ""));
      if (out && out.notice) watchHandoff({ status: "waiting" });
    }
    function submit(helpful, comment) {
      return request("POST", convPath(conversationId, "/feedback"), { turn_id: turnId, helpful: helpful, comment: comment || null })
        .then(done)
        .catch(function (err) {
          announceError(err.message || "評価を送信できませんでした。");
        });
    }
    yes.addEventListener("click", function () {
      yes.setAttribute("aria-pressed", "true");
      submit(true, null);
    });
    no.addEventListener("click", function () {
      no.setAttribute("aria-pressed", "true");
      if (row.querySelector(".fbform")) return;
      var area = h("textarea", { "aria-label": "どこが合わなかったか（任意）", placeholder: "どこが合わなかったか（任意）", maxlength: "1000" });
      var sendFb = h("button", { class: "btn", type: "button", text: "送信" });
      sendFb.addEventListener("click", function () {
        submit(false, area.value.trim());
      });
      append(row, h("div", { class: "fbform" }, area, sendFb));
      area.focus();
    });
    return row;
  }

  // ----- sending: streaming with a JSON fallback ---------------------------------------------------------------------
  function parseEvents(buffer, onEvent) {
    var parts = buffer.split(/\r?\n\r?\n/);
    var rest = parts.pop();
    parts.forEach(function (block) {
      var event = "message";
      var dataLines = [];
      block.split(/\r?\n/).forEach(function (line) {
        if (!line || line[0] === ":") return;
        var idx = line.indexOf(":");
        var field = idx < 0 ? line : line.slice(0, idx);
        var value = idx < 0 ? "" : line.slice(idx + 1).replace(/^ /, "");
        if (field === "event") event = value;
        else if (field === "data") dataLines.push(value);
      });
      if (dataLines.length) {
        var payload;
        try {
          payload = JSON.parse(dataLines.join("\n"));
        } catch (e) {
          return;
        }
        onEvent(event, payload);
      }
    });
    return rest;
  }

  // Browsers without readable streams: the same events, all at once when the answer is complete.
  function wholeBody(res) {
    var done = false;
    return {
      read: async function () {
        if (done) return { done: true };
        done = true;
        return { done: false, value: new TextEncoder().encode(await res.text()) };
      },
      cancel: function () {},
    };
  }

  async function streamTurn(conversationId, text, view) {
    var controller = new AbortController();
    var idle = null;
    function arm() {
      window.clearTimeout(idle);
      idle = window.setTimeout(function () {
        controller.abort();
      }, 75000);
    }
    arm();
    var res;
    try {
      res = await fetch(convPath(conversationId, "/messages/stream"), {
        method: "POST",
        headers: Object.assign(headers(true), { Accept: "text/event-stream" }),
        body: JSON.stringify({ text: text }),
        mode: "cors",
        credentials: "omit",
        signal: controller.signal,
      });
    } catch (e) {
      window.clearTimeout(idle);
      throw networkError();
    }
    if (!res.ok) {
      window.clearTimeout(idle);
      throw await failure(res);
    }
    var reader = res.body && res.body.getReader ? res.body.getReader() : wholeBody(res);
    var decoder = new TextDecoder();
    var buffer = "";
    var result = null;
    var failed = null;
    var ctx = { conversationId: conversationId };
    var preview = null;
    try {
      for (;;) {
        var chunk = await reader.read();
        if (chunk.done) break;
        arm();
        buffer += decoder.decode(chunk.value, { stream: true });
        buffer = parseEvents(buffer, function (event, payload) {
          if (event === "accepted") {
            view.accepted = true;
          } else if (event === "token") {
            if (!preview) {
              preview = h("p", { class: "empathy", "data-section": "empathy" });
              view.bubble.insertBefore(preview, view.typing);
            }
            preview.textContent += payload.text;
          } else if (event === "section") {
            var holder = h("div");
            renderSection(holder, payload.name, payload.data, ctx);
            if (holder.firstChild) {
              var existing = view.bubble.querySelector("[data-section='" + payload.name + "']");
              if (existing) existing.replaceWith(holder.firstChild);
              else view.bubble.insertBefore(holder.firstChild, view.typing);
            }
          } else if (event === "done") {
            result = payload;
          } else if (event === "error") {
            failed = new ApiError(500, payload.message || "回答を作成できませんでした。", null);
          }
        });
        if (result || failed) break;
      }
    } catch (e) {
      failed = failed || networkError();
    } finally {
      window.clearTimeout(idle);
      try {
        Promise.resolve(reader.cancel()).catch(function () {});
      } catch (e) {
        /* already closed */
      }
    }
    if (failed) throw failed;
    if (!result) throw new ApiError(0, "回答の受信が途中で止まりました。もう一度お試しください。", null);
    return result;
  }

  async function send(text, retryView) {
    text = String(text || "").trim();
    if (!text) return;
    if (state.busy) return;
    if (text.length > CFG.maxChars) {
      announceError("メッセージが長すぎます。" + CFG.maxChars + "文字以内にしてください。");
      return;
    }
    clearRetryTimer();
    state.busy = true;
    updateSendState();
    disableOldChips();
    var view = retryView || null;
    if (view) {
      view.bubble.textContent = "";
    } else {
      userMessage(text);
      view = botMessage();
    }
    view.accepted = false;
    view.typing = typing();
    view.bubble.appendChild(view.typing);
    view.msg.setAttribute("aria-busy", "true");
    scrollToBottom();
    announce("送信しました。回答を作成しています。");
    var conversationId = null;
    try {
      conversationId = await ensureConversation();
      var reply;
      try {
        reply = await streamTurn(conversationId, text, view);
      } catch (err) {
        if (err.status === 404) {
          // The conversation is gone (deleted elsewhere): start a new one and send once more.
          setConversation(null);
          conversationId = await ensureConversation();
          reply = await streamTurn(conversationId, text, view);
        } else {
          throw err;
        }
      }
      view.msg.removeAttribute("aria-busy");
      if (reply.held) {
        // A consultant holds the conversation: the message went to them, the bot does not answer.
        view.msg.replaceWith(h("p", { class: "held", text: "担当者に届きました" }));
        announce("担当者に届きました。");
      } else {
        renderAnswer(view.bubble, reply.answer, reply.turn_id, conversationId);
        if (reply.conversation_deleted) {
          forgetConversation(conversationId);
        }
        scrollToMessage(view.msg);
        announceAnswer(reply.answer);
      }
      seen(reply.turn_id);
      watchHandoff(reply.handoff);
    } catch (err) {
      view.msg.removeAttribute("aria-busy");
      var recovered = view.accepted && err.status === 0 ? await recover(conversationId, text) : null;
      if (recovered) {
        renderAnswer(view.bubble, recovered.answer, recovered.id, conversationId);
        announceAnswer(recovered.answer);
      } else {
        showError(view, text, err);
        enableLatestChips();
      }
    } finally {
      state.busy = false;
      updateSendState();
    }
  }

  // The connection broke after the server took the message: the answer may well be stored. Look before offering a
  // retry that would send the message twice.
  async function recover(conversationId, text) {
    try {
      var history = await request("GET", convPath(conversationId, "/messages"));
      var m = history.messages;
      var last = m[m.length - 1];
      var before = m[m.length - 2];
      if (last && before && last.role === "bot" && last.answer && before.role === "user" && before.text === text) return last;
    } catch (e) {
      /* still offline: show the error */
    }
    return null;
  }

  function enableLatestChips() {
    var answered = Array.prototype.filter.call(log.querySelectorAll(".msg.bot"), function (m) {
      return m.querySelector(".chips") && !m.querySelector(".error");
    });
    var latest = answered[answered.length - 1];
    if (latest) Array.prototype.forEach.call(latest.querySelectorAll(".chip"), function (chip) { chip.disabled = false; });
  }

  function showError(view, text, err) {
    view.bubble.textContent = "";
    var message = err && err.message ? err.message : "送信できませんでした。";
    var retry = h("button", { class: "btn retry", type: "button", text: "再送信" });
    retry.addEventListener("click", function () {
      send(text, view).then(function () {});
    });
    var box = h("div", { class: "error", "data-status": String(err && err.status) }, h("p", { text: message }), retry);
    view.bubble.appendChild(box);
    // Rate limited (429) or an outage (503): the server says when a retry can work; the button waits that long.
    if (err && (err.status === 429 || err.status === 503) && err.retryAfter) {
      var left = err.retryAfter;
      retry.disabled = true;
      retry.textContent = "再送信（あと" + left + "秒）";
      state.retryTimer = window.setInterval(function () {
        left -= 1;
        if (left <= 0) {
          clearRetryTimer();
          retry.disabled = false;
          retry.textContent = "再送信";
        } else {
          retry.textContent = "再送信（あと" + left + "秒）";
        }
      }, 1000);
    }
    scrollToBottom();
    announceError(message);
  }
  function clearRetryTimer() {
    if (state.retryTimer) window.clearInterval(state.retryTimer);
    state.retryTimer = null;
  }
  function announceError(message) {
    alertLive.textContent = "";
    window.setTimeout(function () {
      alertLive.textContent = message;
    }, 50);
  }
  function disableOldChips() {
    Array.prototype.forEach.call(log.querySelectorAll(".chip"), function (chip) {
      chip.disabled = true;
    });
  }

  // ----- history, new conversation, deletion ----------------------------------------------------------------------------
  function welcome() {
    var view = botMessage();
    view.msg.classList.add("welcome");
    append(view.bubble, h("p", { class: "empathy", text: WELCOME }));
    append(
      view.bubble,
      h("div", { class: "chips", role: "group", "aria-label": "相談の例" }, STARTERS.map(function (text) {
        return h("button", { class: "chip", type: "button", text: text, onclick: function () { send(text); } });
      }))
    );
  }

  function notice() {
    var box = h("div", { class: "notice", role: "region", "aria-labelledby": "cp-notice-title" });
    var ok = h("button", { class: "btn notice-ok", type: "button", text: "確認しました" });
    var del = h("button", { class: "linkbtn", type: "button", text: "会話データを削除する" });
    append(
      box,
      h("h3", { id: "cp-notice-title", text: "ご利用の前に" }),
      h(
        "ul",
        null,
        h("li", { text: "回答はAIが記事をもとに自動で作成します。医師・弁護士・キャリアコンサルタントなどの専門家ではなく、診断や法的な判断はできません。" }),
        h("li", { text: "入力した内容と回答は、会話を続けるためにサーバーに保存されます（最新20件）。評価ボタンの結果は回答の改善に使います。氏名・会社名など個人を特定できる情報は書かないでください。" }),
        h("li", { text: "命の危険を感じるときは、ためらわず110番・119番に連絡してください。" })
      ),
      h("p", { class: "row" }, "会話はいつでも削除できます：", del),
      ok
    );
    ok.addEventListener("click", function () {
      save("noticeSeen", true);
      box.remove();
      input.focus();
    });
    del.addEventListener("click", function () {
      askDelete(del);
    });
    return box;
  }

  function renderHistory(history) {
    state.serverDone = history.done_steps || [];
    var lastBot = null;
    history.messages.forEach(function (m) {
      seen(m.id);
      if (m.role === "user") userMessage(m.text);
      else if (m.role === "consultant") consultantMessage(m.text);
      else {
        var view = botMessage();
        if (m.answer) renderAnswer(view.bubble, m.answer, m.id, history.conversation_id);
        else append(view.bubble, h("p", { class: "empathy", text: m.text }));
        lastBot = view;
      }
    });
    disableOldChipsExcept(lastBot);
    watchHandoff(history.handoff);
  }
  function disableOldChipsExcept(view) {
    Array.prototype.forEach.call(log.querySelectorAll(".chip"), function (chip) {
      if (!view || !view.bubble.contains(chip)) chip.disabled = true;
    });
  }

  async function loadHistory() {
    state.historyLoaded = true;
    log.textContent = "";
    if (!load("noticeSeen", false)) log.appendChild(notice());
    welcome();
    if (!state.conversationId) return;
    try {
      var history = await request("GET", convPath(state.conversationId, "/messages"));
      if (history.messages.length) {
        renderHistory(history);
        scrollToBottom();
      }
    } catch (err) {
      if (err.status === 404) setConversation(null);
      else {
        var view = botMessage();
        append(view.bubble, h("div", { class: "error" }, h("p", { text: "これまでの会話を読み込めませんでした。" + (err.message || "") })));
      }
    }
  }

  function startNew() {
    if (state.busy) return;
    clearRetryTimer();
    watchHandoff(null);
    state.lastTurnId = 0;
    setConversation(null);
    state.serverDone = [];
    log.textContent = "";
    welcome();
    input.value = "";
    updateCounter();
    announce("新しい相談を始めました。");
    input.focus();
  }

  function forgetConversation(id) {
    var all = load("conversations", []).filter(function (c) { return c !== id; });
    save("conversations", all);
    save(stepsKey(id), null);
    if (state.conversationId === id) {
      state.conversationId = null;
      save("conversation", null);
    }
  }

  function askDelete(returnFocus) {
    var existing = log.querySelector(".confirm");
    if (existing) {
      existing.querySelector("button").focus();
      return;
    }
    var yes = h("button", { class: "btn", type: "button", text: "削除する" });
    var no = h("button", { class: "btn secondary", type: "button", text: "やめる" });
    var box = h(
      "div",
      { class: "confirm", role: "group", "aria-labelledby": "cp-confirm-text" },
      h("p", { id: "cp-confirm-text", text: "このブラウザでの相談の記録を、サーバーからすべて削除します。元に戻すことはできません。" }),
      h("div", { class: "row" }, yes, no)
    );
    log.insertBefore(box, log.firstChild);
    log.scrollTop = 0;
    yes.focus();
    no.addEventListener("click", function () {
      box.remove();
      (returnFocus && returnFocus.isConnected ? returnFocus : input).focus();
    });
    yes.addEventListener("click", async function () {
      yes.disabled = true;
      var ids = load("conversations", []);
      if (state.conversationId && ids.indexOf(state.conversationId) < 0) ids.push(state.conversationId);
      try {
        for (var k = 0; k < ids.length; k++) {
          try {
            await request("DELETE", convPath(ids[k]));
          } catch (err) {
            if (err.status !== 404) throw err;
          }
          forgetConversation(ids[k]);
        }
        log.textContent = "";
        var view = botMessage();
        append(view.bubble, h("p", { class: "empathy", text: "相談の記録を削除しました。またいつでも、はじめから相談してください。" }));
        announce("相談の記録を削除しました。");
        input.focus();
      } catch (err) {
        yes.disabled = false;
        announceError(err.message || "削除できませんでした。もう一度お試しください。");
        box.querySelector("p").textContent = err.message || "削除できませんでした。もう一度お試しください。";
      }
    });
  }

  // ----- panel open / close and keyboard --------------------------------------------------------------------------------
  function isOpen() {
    return !panel.hidden;
  }
  function openPanel(focus) {
    panel.hidden = false;
    root.classList.add("open");
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", "チャットを閉じる");
    sessionFlag("open", true);
    var first = !state.historyLoaded;
    var ready = first ? loadHistory() : Promise.resolve();
    if (focus !== false) {
      var okButton = log.querySelector(".notice-ok");
      (okButton || input).focus();
    }
    return ready;
  }
  function closePanel() {
    panel.hidden = true;
    root.classList.remove("open");
    launcher.setAttribute("aria-expanded", "false");
    launcher.removeAttribute("aria-label");
    sessionFlag("open", false);
    launcher.focus();
  }
  launcher.addEventListener("click", function () {
    if (isOpen()) closePanel();
    else openPanel(true);
  });
  closeButton.addEventListener("click", closePanel);
  newButton.addEventListener("click", startNew);
  aboutButton.addEventListener("click", function () {
    var box = log.querySelector(".notice");
    if (!box) {
      box = notice();
      log.insertBefore(box, log.firstChild);
    }
    log.scrollTop = 0;
    box.querySelector(".notice-ok").focus();
  });

  panel.addEventListener("keydown", function (e) {
    if (e.key === "Escape") {
      e.preventDefault();
      closePanel();
      return;
    }
    if (e.key === "Tab" && window.matchMedia("(max-width: 479.98px)").matches) {
      // Full screen on phones: keep Tab inside the panel (the page behind is covered).
      var focusable = Array.prototype.filter.call(panel.querySelectorAll("button,textarea,input,a[href],[tabindex='0']"), function (el) {
        return !el.disabled && el.offsetParent !== null;
      });
      if (!focusable.length) return;
      var active = shadow.activeElement;
      if (e.shiftKey && active === focusable[0]) {
        e.preventDefault();
        focusable[focusable.length - 1].focus();
      } else if (!e.shiftKey && active === focusable[focusable.length - 1]) {
        e.preventDefault();
        focusable[0].focus();
      }
    }
  });

  // Japanese input: Enter that confirms a conversion (変換確定) must never send.
  var composing = false;
  input.addEventListener("compositionstart", function () {
    composing = true;
  });
  input.addEventListener("compositionend", function () {
    composing = false;
  });
  input.addEventListener("keydown", function (e) {
    if (e.key !== "Enter") return;
    if (e.isComposing || composing || e.keyCode === 229) return;
    if (e.shiftKey || e.altKey) return; // a new line
    e.preventDefault();
    submitInput();
  });
  input.addEventListener("input", function () {
    updateCounter();
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 3, 160) + "px";
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    submitInput();
  });
  function submitInput() {
    if (state.busy || !isOnline()) {
      if (!isOnline()) announceError("オフラインです。インターネットに接続すると送信できます。");
      return;
    }
    var text = input.value.trim();
    if (!text) {
      announceError("メッセージを入力してください。");
      return;
    }
    if (text.length > CFG.maxChars) {
      announceError("メッセージが長すぎます。" + CFG.maxChars + "文字以内にしてください。");
      return;
    }
    input.value = "";
    input.style.height = "";
    updateCounter();
    send(text);
  }
  function updateCounter() {
    var n = input.value.length;
    var near = n > CFG.maxChars * 0.8;
    counter.textContent = near ? n + " / " + CFG.maxChars : "";
    counter.classList.toggle("over", n > CFG.maxChars);
  }
  function isOnline() {
    return navigator.onLine !== false;
  }
  function updateSendState() {
    var blocked = state.busy || !isOnline();
    sendButton.setAttribute("aria-disabled", blocked ? "true" : "false");
    offline.hidden = isOnline();
  }
  window.addEventListener("online", function () {
    updateSendState();
    announce("インターネットに接続しました。");
  });
  window.addEventListener("offline", function () {
    updateSendState();
    announceError("オフラインになりました。接続が戻ると送信できます。");
  });
  updateSendState();

  // The server's own limit, when it differs from the default.
  fetch(CFG.api + "/api/config", { mode: "cors", credentials: "omit" })
    .then(function (res) {
      return res.ok ? res.json() : null;
    })
    .then(function (config) {
      if (config && config.max_message_chars) CFG.maxChars = config.max_message_chars;
      if (config && config.poll_seconds) CFG.pollMs = config.poll_seconds * 1000;
    })
    .catch(function () {});

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  else mount();
})();
