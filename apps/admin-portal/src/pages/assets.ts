/** The portal's stylesheet and script, served from /assets (no CDN: the pages work offline). */
export const PORTAL_CSS = `
:root{--ink:#1d2330;--muted:#5a6272;--line:#dfe3ea;--bg:#f6f7f9;--brand:#1f3a8a;--ok:#0f5132;--okbg:#d1f0dc;--warn:#664d03;--warnbg:#fff0c2;--bad:#842029;--badbg:#f8d7da;--info:#084298;--infobg:#dbe7ff;--idle:#41464b;--idlebg:#e2e3e5}
*{box-sizing:border-box}body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:var(--ink);background:var(--bg)}
a{color:var(--brand)}a:focus,button:focus,input:focus,select:focus{outline:3px solid #93b4ff;outline-offset:1px}
header.top{background:#16213e;color:#fff;display:flex;align-items:center;gap:1.2rem;padding:.55rem 1.2rem;flex-wrap:wrap}
header.top .brand{font-weight:700;color:#fff;text-decoration:none;margin-right:.6rem}
header.top nav a{color:#dbe4ff;text-decoration:none;margin-right:1rem;padding:.25rem 0}
header.top nav a[aria-current=page]{color:#fff;border-bottom:2px solid #8fb0ff}
header.top form{margin-left:auto}header.top .who{color:#c8d3f0;font-size:.88rem}
main{padding:1.2rem 1.6rem;max-width:1280px;margin:0 auto}
h1{font-size:1.45rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:1.6rem 0 .6rem}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:1rem 1.1rem;margin-bottom:1rem}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line);border-radius:8px}
th,td{border-bottom:1px solid var(--line);padding:.45rem .6rem;text-align:left;font-size:.9rem;vertical-align:top}
th{background:#eef1f6;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
caption{text-align:left;font-weight:600;padding:.4rem 0;color:var(--muted)}
.badge{display:inline-block;border-radius:999px;padding:.05rem .55rem;font-size:.8rem;font-weight:600;white-space:nowrap}
.b-ok{background:var(--okbg);color:var(--ok)}.b-warn{background:var(--warnbg);color:var(--warn)}.b-bad{background:var(--badbg);color:var(--bad)}.b-info{background:var(--infobg);color:var(--info)}.b-idle{background:var(--idlebg);color:var(--idle)}
form.filters{display:flex;flex-wrap:wrap;gap:.6rem;align-items:flex-end;margin-bottom:1rem}
form.filters label{display:flex;flex-direction:column;font-size:.8rem;color:var(--muted);gap:.15rem}
label{display:block;margin:.5rem 0 .2rem;font-weight:600;font-size:.9rem}
input,select,textarea{font:inherit;padding:.35rem .5rem;border:1px solid #aab2c0;border-radius:5px;background:#fff;color:var(--ink)}
textarea{width:100%;min-height:4rem}
button,.button{font:inherit;background:var(--brand);color:#fff;border:0;border-radius:5px;padding:.42rem .9rem;cursor:pointer;text-decoration:none;display:inline-block}
button.secondary,.button.secondary{background:#fff;color:var(--brand);border:1px solid var(--brand)}
button.danger{background:#a61b29}
.pager{display:flex;gap:.8rem;margin:.8rem 0}.pager span.disabled{color:#5f6673}
.empty{padding:1.4rem;text-align:center;color:var(--muted);background:#fff;border:1px dashed #c4cad4;border-radius:8px}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1.2rem;margin:0}dl.facts dt{color:var(--muted)}dl.facts dd{margin:0}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,1fr));gap:.8rem}
.stat{background:#fff;border:1px solid var(--line);border-radius:8px;padding:.8rem 1rem}.stat .v{font-size:1.5rem;font-weight:700}.stat .l{color:var(--muted);font-size:.85rem}
.flash{background:var(--okbg);color:var(--ok);border-radius:6px;padding:.6rem .9rem;margin-bottom:1rem}
.error{background:var(--badbg);color:var(--bad);border-radius:6px;padding:.6rem .9rem;margin-bottom:1rem}
pre{background:#0f172a;color:#e2e8f0;padding:.8rem;border-radius:6px;overflow:auto;font-size:.82rem;max-height:28rem}
code{font-size:.85rem}.muted{color:var(--muted)}.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem}
.diff del{background:#f8d7da;text-decoration:line-through}.diff ins{background:#d1f0dc;text-decoration:none}
.charts{display:grid;grid-template-columns:2fr 1fr;gap:1rem}@media (max-width:900px){.charts{grid-template-columns:1fr}}
svg text{font:11px system-ui,sans-serif;fill:#4a5160}
.confirm{border-left:4px solid #a61b29}
`;

/** Times are sent in UTC; this shows them in the operator's own time zone, the UTC value kept on hover. */
export const PORTAL_JS = `
(function () {
  var fmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  document.querySelectorAll('time[datetime]').forEach(function (el) {
    var d = new Date(el.getAttribute('datetime'));
    if (isNaN(d.getTime())) return;
    el.textContent = fmt.format(d);
    el.setAttribute('title', 'UTC ' + d.toISOString().replace('T', ' ').replace(/\\.\\d+Z$/, '') + ' (shown in ' + zone + ')');
  });
})();
`;
