// The dashboard's style: one column on a phone, list and event log side by side from 60em.
export const STYLE = `
:root { color-scheme: light dark; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --muted: #6e7781; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 15px/1.4 system-ui, sans-serif; margin: 0; padding: 0.75rem; max-width: 90rem; margin-inline: auto; }
header { display: flex; align-items: baseline; justify-content: space-between; gap: 1rem; }
h1 { font-size: 1.2rem; margin: 0.25rem 0; } h1 small { color: var(--muted); font-weight: normal; }
h2 { font-size: 1.05rem; margin: 0.75rem 0 0.25rem; }
form { display: flex; flex-wrap: wrap; gap: 0.5rem 1rem; margin: 0.5rem 0; }
label { display: flex; flex-direction: column; flex: 1 1 16rem; font-size: 0.85rem; color: var(--muted); }
input { font: inherit; padding: 0.4rem; border: 1px solid var(--line); border-radius: 4px; }
main { display: grid; gap: 1rem; }
@media (min-width: 60em) { main { grid-template-columns: 3fr 1fr; } }
.service { border: 1px solid var(--line); border-radius: 6px; margin-bottom: 0.75rem; padding: 0.25rem 0.75rem 0.5rem; }
.instance { border-top: 1px solid var(--line); padding: 0.5rem 0; display: grid; gap: 0.2rem; }
.instance:first-of-type { border-top: 0; }
.row { display: flex; flex-wrap: wrap; gap: 0.25rem 0.75rem; align-items: baseline; }
.id { font-weight: 600; } .muted { color: var(--muted); font-size: 0.85rem; }
.badge { border-radius: 1em; padding: 0 0.6em; font-size: 0.8rem; color: #fff; background: var(--muted); }
.healthy { background: var(--ok); } .degraded { background: var(--warn); } .unhealthy { background: var(--bad); }
.maint { background: #8250df; }
.routing { border-top: 1px solid var(--line); padding: 0.4rem 0; display: grid; gap: 0.2rem; }
.split { font-weight: 600; }
.running { background: #0969da; } .completed { background: var(--ok); } .rolled-back { background: var(--bad); } .cancelled { background: var(--muted); }
.reason { color: var(--bad); font-size: 0.85rem; }
.tag { border: 1px solid var(--line); border-radius: 3px; padding: 0 0.3em; font-size: 0.8rem; }
code, pre { font-size: 0.8rem; } pre { white-space: pre-wrap; margin: 0; max-height: 6em; overflow: auto; }
button { font: inherit; font-size: 0.85rem; padding: 0.3rem 0.6rem; border: 1px solid var(--line); border-radius: 4px; background: transparent; cursor: pointer; min-height: 2.2rem; }
.live { font-size: 0.8rem; } .live.on { color: var(--ok); } .live.off { color: var(--bad); }
#message:empty { display: none; } #message { padding: 0.4rem; border-radius: 4px; border: 1px solid var(--bad); }
#events { list-style: none; padding: 0; margin: 0; font-size: 0.85rem; max-height: 70vh; overflow: auto; }
#events li { border-bottom: 1px solid var(--line); padding: 0.2rem 0; }
`;
