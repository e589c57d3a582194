// Plays a live stream from ferrocast's built-in page in headless Chromium and prints one
// JSON report on stdout (everything else goes to stderr).
//
// Used by tests/player_chromium.rs and tests/reconnect.rs (through tests/support/binary.rs);
// runs on its own too:
//   PLAYER_PAGE=http://127.0.0.1:8080/ PLAYER_STREAM=live/test PLAYER_SECONDS=60 \
//     node tests/player/play.js
//
// Environment:
//   PLAYER_PAGE           the page URL (ferrocast's `/`)
//   PLAYER_STREAM         the stream to select on the page (`live/test`)
//   PLAYER_SECONDS        how long to play once playback has started
//   PLAYER_START_TIMEOUT  seconds to wait for playback to start (default 15); a stream
//                         that does not start is reported (`started: false`), not thrown
//   PLAYER_CHROMIUM       the browser (default /usr/bin/chromium, Debian's package)
//   PLAYER_RENDITION      optional: a height such as `360p`; once the stream plays, the
//                         page's rendition selector is set to it (as a viewer would) and
//                         the report's `levels` says which level each fragment came from
//
// The page is driven as a person would: open it, pick the stream (the page plays the
// first live stream by itself; otherwise click its entry in the list), let it play.
// What the page shows is then read in the page itself:
//   - the <video> element's events and, every 100 ms, its currentTime/paused/buffer;
//   - the hls.js instance (`window.ferrocastPlayer.hls`, or any instance the page creates: the init
//     script wraps the global `Hls` constructor to see it), for `hls.playingDate`
//     (latency = Date.now() - playingDate, the page's own readout formula), its errors
//     and the fragments played (with their discontinuity counter `cc`);
//   - the page's latency readout text, if it has an element with id `latency`.
//
// Report (times are ms since the epoch unless said otherwise):
//   started, start_ms (opening the page -> first `playing`, then currentTime moving),
//   selected_by (the page picked the stream itself, or a click on its entry),
//   stall_ms (sum of the time currentTime did not move while the video was neither
//   paused nor ended, after the start), waiting_events, waiting_ms (waiting -> playing),
//   latency_ms [samples, one a second], readouts [the page's readout texts],
//   stall_episodes [[t, ms, bufferedAhead at its start]],
//   samples [[t, currentTime, paused, bufferedAhead]], frags [[t, sn, cc, level]],
//   errors [{t, fatal, type, details, error}], page_errors [text], played_s,
//   network [[t, ms, status, path]] (requests that were not 200 or took over 1 s),
//   partial_segments_kept (how often the page's hls.js work-around took effect:
//   `window.ferrocastPlayer.partialSegmentsKept`).
'use strict';

const { chromium } = require('playwright-core');

const PAGE = process.env.PLAYER_PAGE;
const STREAM = process.env.PLAYER_STREAM || '';
const SECONDS = Number(process.env.PLAYER_SECONDS || '60');
const START_TIMEOUT = Number(process.env.PLAYER_START_TIMEOUT || '15');
const CHROMIUM = process.env.PLAYER_CHROMIUM || '/usr/bin/chromium';
const RENDITION = process.env.PLAYER_RENDITION || '';

function log(...args) {
  process.stderr.write(`[play.js ${new Date().toISOString()}] ${args.join(' ')}\n`);
}

// Runs in the page before any of its scripts.
function probe() {
  const P = (window.__probe = {
    events: [],
    samples: [],
    frags: [],
    errors: [],
    latency: [],
    readouts: [],
    hls: null,
    hlsLog: [],
  });
  const attach = (hls) => {
    if (!hls || P.hlsSeen === hls) return;
    P.hlsSeen = hls;
    P.hls = hls;
    try {
      // Buffered ranges at each error (the element's and, through hls.js internals when
      // reachable, each SourceBuffer's), to tell an audio/video hole from an empty buffer.
      const ranges = (b) => {
        const r = [];
        for (let i = 0; i < b.length; i++) r.push([+b.start(i).toFixed(3), +b.end(i).toFixed(3)]);
        return r;
      };
      // The last fragment and part loads and buffer appends (per SourceBuffer ranges),
      // reported with each error: what hls.js was doing when the buffer ran dry.
      P.trace = [];
      P.ranges = {};
      const trace = (what, d) => {
        const f = d.frag || {};
        const p = d.part;
        P.trace.push([
          Date.now(), what, String(f.type || d.type || ''), f.sn, p ? p.index : null,
          +((p || f).start || 0).toFixed(3), +((p || f).duration || 0).toFixed(3),
        ]);
        if (P.trace.length > 40) P.trace.shift();
      };
      const playlist = (what) => (_e, d) => {
        const url = String(d.url || (d.details && d.details.url) || '');
        const det = d.details || {};
        P.trace.push([
          Date.now(), what, url.replace(/^https?:\/\/[^/]+/, ''), det.lastPartSn, det.lastPartIndex,
          det.tuneInGoal || 0, +(det.age || 0).toFixed(3),
        ]);
        if (P.trace.length > 60) P.trace.shift();
      };
      hls.on('hlsAudioTrackLoading', playlist('audio playlist'));
      hls.on('hlsAudioTrackLoaded', playlist('audio playlist loaded'));
      hls.on('hlsLevelLoading', playlist('playlist'));
      hls.on('hlsLevelLoaded', playlist('playlist loaded'));
      hls.on('hlsFragLoading', (_e, d) => trace('loading', d));
      hls.on('hlsFragLoaded', (_e, d) => trace('loaded', d));
      hls.on('hlsBufferAppended', (_e, d) => {
        trace('appended', d);
        for (const [k, tr] of Object.entries(d.timeRanges || {})) {
          if (tr) P.ranges[k] = ranges(tr);
        }
      });
      // What each stream controller believes when an error comes (hls.js internals,
      // read defensively): its state, the last fragment it appended, whether it loads
      // parts, and the tail of its playlist as it sees it.
      const controllers = () => {
        const out = {};
        for (const [name, c] of [['main', hls.streamController], ['audio', hls.audioStreamController]]) {
          try {
            if (!c) continue;
            const levels = c.levels || [];
            const idx = name === 'audio' ? c.trackId : c.levelLastLoaded && c.levelLastLoaded.id;
            const det = c.levelLastLoaded ? c.levelLastLoaded.details : (levels[idx] || {}).details;
            // [sn, start, end, has a URI (complete, not the hint), hls.js's fragment
            // tracker state for it (NOT_LOADED, APPENDING, PARTIAL, OK)].
            const tracker = c.fragmentTracker;
            const f = (x) => (x ? [x.sn, +(+x.start).toFixed(3), +(+x.end).toFixed(3), !!x.url,
              tracker && tracker.getState ? String(tracker.getState(x)) : null] : null);
            out[name] = {
              state: c.state,
              loadingParts: c.loadingParts,
              fragPrevious: f(c.fragPrevious),
              fragCurrent: f(c.fragCurrent),
              lastFragments: det ? det.fragments.slice(-2).map(f) : null,
              fragmentHint: det ? f(det.fragmentHint) : null,
              parts: det && det.partList
                ? det.partList.slice(-4).map((p) => [p.fragment.sn, p.index, +p.start.toFixed(3), +p.duration.toFixed(3), !!p.loaded, p.fragment === det.fragmentHint])
                : null,
            };
          } catch (e) {
            out[name] = String(e);
          }
        }
        return out;
      };
      hls.on('hlsError', (_e, d) => {
        const v = hls.media;
        const sourceBuffers = { ...P.ranges };
        try {
          const sb = hls.bufferController && hls.bufferController.sourceBuffer;
          for (const k of ['audio', 'video', 'audiovideo']) {
            if (sb && sb[k]) sourceBuffers[k] = ranges(sb[k].buffered);
          }
        } catch (e) {
          sourceBuffers.error = String(e);
        }
        P.errors.push({
          t: Date.now(), fatal: !!d.fatal, type: String(d.type), details: String(d.details),
          error: d.error ? String(d.error.message || d.error) : null,
          currentTime: v ? +v.currentTime.toFixed(3) : null,
          buffered: v ? ranges(v.buffered) : null,
          sourceBuffers,
          controllers: controllers(),
          log: P.hlsLog.slice(-50),
          trace: P.trace.slice(-40),
        });
      });
      hls.on('hlsFragChanged', (_e, d) => {
        P.frags.push([Date.now(), d.frag.sn, d.frag.cc, d.frag.level]);
      });
    } catch (e) {
      P.errors.push({ t: Date.now(), fatal: false, type: 'probe', details: String(e) });
    }
  };
  // Wrap the global Hls constructor (UMD build) so every instance is seen.
  let real;
  Object.defineProperty(window, 'Hls', {
    configurable: true,
    get() {
      return real;
    },
    set(v) {
      if (typeof v !== 'function' || v.__wrapped) {
        real = v;
        return;
      }
      const Wrapped = function (...args) {
        // hls.js's own log, filtered in the page (see HLS_LOG below): what it decided
        // about parts, gaps and stalls.
        const keep = /part|Need buffer|OFF|gap|stall|nudg|skip|hole|waiting|MISSED|Tune-in|sync|Loading (audio|main) sn/i;
        const routine = /Loading level index|Loading audio-track|loaded \[|load progress|load complete|queuing|Flushed|update level timing|Parsed (main|audio)|Buffered (main|audio)|REFRESHED/;
        const sink = (level) => (...a) => {
          const text = a.map(String).join(' ');
          if (keep.test(text) && !routine.test(text)) {
            P.hlsLog.push(`${Date.now()} ${level} ${text.slice(0, 300)}`);
            if (P.hlsLog.length > 400) P.hlsLog.shift();
          }
        };
        const debug = { debug: sink('debug'), log: sink('log'), info: sink('info'), warn: sink('warn'), error: sink('error') };
        args[0] = Object.assign({}, args[0] || {}, { debug });
        const h = new v(...args);
        attach(h);
        return h;
      };
      Object.setPrototypeOf(Wrapped, v);
      Wrapped.prototype = v.prototype;
      Wrapped.__wrapped = true;
      real = Wrapped;
    },
  });
  for (const type of ['waiting', 'playing', 'pause', 'ended', 'error', 'stalled', 'loadeddata']) {
    document.addEventListener(
      type,
      (ev) => {
        if (ev.target && ev.target.tagName === 'VIDEO') {
          P.events.push([Date.now(), type, ev.target.currentTime]);
        }
      },
      true,
    );
  }
  setInterval(() => {
    const h = window.hls || (window.ferrocastPlayer && window.ferrocastPlayer.hls);
    if (h) attach(h);
    const v = document.querySelector('video');
    if (!v) return;
    let ahead = 0;
    for (let i = 0; i < v.buffered.length; i++) {
      if (v.buffered.start(i) <= v.currentTime + 0.05 && v.buffered.end(i) >= v.currentTime) {
        ahead = v.buffered.end(i) - v.currentTime;
      }
    }
    P.samples.push([Date.now(), v.currentTime, v.paused || v.ended, Math.round(ahead * 1000) / 1000]);
  }, 100);
  setInterval(() => {
    const h = P.hls;
    if (h && h.playingDate) {
      P.latency.push(Date.now() - h.playingDate.getTime());
    }
    const r = document.getElementById('latency');
    if (r && r.textContent) P.readouts.push(r.textContent.trim());
  }, 1000);
}

// Selects the stream on the page: nothing to do when the page picked it on its own (it
// plays the first live stream when none is chosen); otherwise click its entry in the
// stream list (`[data-name]` buttons), or a link, button or <option> naming it.
async function selectStream(page) {
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    const how = await page.evaluate((name) => {
      if (window.ferrocastPlayer && window.ferrocastPlayer.stream === name) return 'picked by the page';
      const byData = document.querySelector(`[data-name="${CSS.escape(name)}"], [data-stream="${CSS.escape(name)}"]`);
      if (byData) {
        byData.click();
        return 'clicked its entry';
      }
      for (const el of document.querySelectorAll('a, button')) {
        const href = el.getAttribute && el.getAttribute('href');
        if ((el.textContent || '').trim() === name || (href && href.includes(name))) {
          el.click();
          return `clicked ${el.tagName.toLowerCase()} "${(el.textContent || '').trim()}"`;
        }
      }
      for (const sel of document.querySelectorAll('select')) {
        for (const opt of sel.options) {
          if (opt.value.includes(name) || opt.textContent.trim() === name) {
            sel.value = opt.value;
            sel.dispatchEvent(new Event('change', { bubbles: true }));
            return 'chose its option';
          }
        }
      }
      return null;
    }, STREAM);
    if (how) return how;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`stream ${STREAM} not found on the page: ${(await page.content()).slice(0, 2000)}`);
}

// Chooses the rendition labelled `RENDITION` (`360p · 812 kb/s`) in the page's
// rendition selector; returns the level index chosen.
async function selectRendition(page) {
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    const chosen = await page.evaluate((want) => {
      const sel = document.getElementById('rendition');
      if (!sel || sel.disabled) return null;
      for (const opt of sel.options) {
        if (opt.textContent.trim().split(' ')[0] === want) {
          sel.value = opt.value;
          sel.dispatchEvent(new Event('change', { bubbles: true }));
          return Number(opt.value);
        }
      }
      return null;
    }, RENDITION);
    if (chosen !== null) return chosen;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`rendition ${RENDITION} not offered by the page`);
}

// Time currentTime did not move while the video was neither paused nor ended, after
// `from`: the total and the episodes ([start, ms, buffer ahead at the start]).
function stalls(samples, from) {
  let stall = 0;
  const episodes = [];
  let open = null;
  for (let i = 1; i < samples.length; i++) {
    const [t0, c0] = samples[i - 1];
    const [t1, c1, paused] = samples[i];
    if (t0 < from || paused) continue;
    if (c1 - c0 < 0.001) {
      stall += t1 - t0;
      if (!open) {
        open = [t0, 0, samples[i - 1][3]];
        episodes.push(open);
      }
      open[1] += t1 - t0;
    } else {
      open = null;
    }
  }
  return { total: stall, episodes };
}

async function main() {
  if (!PAGE) throw new Error('PLAYER_PAGE is not set');
  let browser;
  const hardStop = setTimeout(() => {
    log('hard deadline reached, exiting');
    // Exiting lets Playwright kill the browser it launched.
    process.exit(3);
  }, (SECONDS + START_TIMEOUT + 60) * 1000);
  try {
    // A fresh, empty profile (Playwright makes a temporary user-data-dir and removes it).
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--autoplay-policy=no-user-gesture-required',
      ],
    });
    const context = await browser.newContext();
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => {
      pageErrors.push(String(e));
      log('page error:', String(e));
    });
    page.on('console', (m) => log(`console.${m.type()}:`, m.text()));
    page.on('requestfailed', (r) => log('request failed:', r.url(), r.failure() && r.failure().errorText));
    // Answers that are not 200, and slow ones (a blocking reload waits about one part).
    const network = [];
    page.on('requestfinished', async (req) => {
      const t = req.timing();
      const resp = await req.response().catch(() => null);
      const status = resp ? resp.status() : 0;
      const ms = t.responseEnd >= 0 ? Math.round(t.responseEnd) : -1;
      if (status !== 200 || ms > 1000) {
        const at = Math.round(t.startTime);
        network.push([at, ms, status, req.url().replace(/^https?:\/\/[^/]+/, '')]);
        log(`slow or failed request: ${status} in ${ms} ms: ${req.url()}`);
      }
    });
    await page.addInitScript(probe);
    // Times count from opening the page.
    const opened = Date.now();
    await page.goto(PAGE, { waitUntil: 'load' });
    const how = await selectStream(page);
    const selected = Date.now();
    log(`selected ${STREAM} (${how}) ${selected - opened} ms after opening the page`);

    // Started: a `playing` event, then currentTime moving.
    let startedAt = null;
    const startDeadline = selected + START_TIMEOUT * 1000;
    while (Date.now() < startDeadline) {
      startedAt = await page.evaluate((since) => {
        const P = window.__probe;
        const playing = P.events.find((e) => e[1] === 'playing' && e[0] >= since);
        if (!playing) return null;
        const s = P.samples.filter((x) => x[0] >= playing[0]);
        for (let i = 1; i < s.length; i++) {
          if (!s[i][2] && s[i][1] > s[0][1]) return playing[0];
        }
        return null;
      }, how === 'picked by the page' ? opened : selected);
      if (startedAt) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    let level = null;
    if (startedAt && RENDITION) {
      level = await selectRendition(page);
      log(`rendition ${RENDITION} chosen (level ${level})`);
    }
    if (startedAt) {
      log(`playing ${startedAt - opened} ms after opening the page; playing for ${SECONDS} s`);
      await new Promise((r) => setTimeout(r, SECONDS * 1000));
    } else {
      log(`no playback within ${START_TIMEOUT} s`);
    }
    const P = await page.evaluate(() => {
      const P = window.__probe;
      return {
        events: P.events,
        samples: P.samples,
        frags: P.frags,
        errors: P.errors,
        latency: P.latency,
        readouts: P.readouts,
        hls: !!P.hls,
        hlsLog: P.hlsLog,
        levels: P.hls ? P.hls.levels.map((l) => [l.width, l.height, l.name || null]) : [],
        partialSegmentsKept: window.ferrocastPlayer ? window.ferrocastPlayer.partialSegmentsKept : null,
      };
    });
    let waitingMs = 0;
    let waitingEvents = 0;
    let waitFrom = null;
    for (const [t, type] of P.events) {
      if (startedAt && t < startedAt) continue;
      if (type === 'waiting') {
        waitingEvents += 1;
        if (waitFrom === null) waitFrom = t;
      } else if (type === 'playing' && waitFrom !== null) {
        waitingMs += t - waitFrom;
        waitFrom = null;
      }
    }
    if (waitFrom !== null) waitingMs += Date.now() - waitFrom;
    const after = P.samples.filter((s) => startedAt && s[0] >= startedAt);
    const report = {
      started: !!startedAt,
      start_ms: startedAt ? startedAt - opened : null,
      opened_at: opened,
      selected_at: selected,
      selected_by: how,
      started_at: startedAt,
      rendition_level: level,
      levels: P.levels,
      stall_ms: startedAt ? stalls(P.samples, startedAt).total : null,
      stall_episodes: startedAt ? stalls(P.samples, startedAt).episodes : [],
      waiting_events: waitingEvents,
      waiting_ms: waitingMs,
      played_s: after.length ? after[after.length - 1][1] - after[0][1] : 0,
      latency_ms: P.latency,
      readouts: P.readouts.filter((_, i) => i % 5 === 0),
      hls_instance: P.hls,
      partial_segments_kept: P.partialSegmentsKept,
      samples: P.samples,
      frags: P.frags,
      errors: P.errors,
      events: P.events,
      page_errors: pageErrors,
      network,
    };
    if (report.stall_ms === null || report.stall_ms > 500 || waitingMs > 500) {
      // The filtered hls.js log (parts, gaps, stalls) goes to stderr, which the tests
      // print with a failure.
      for (const line of P.hlsLog || []) log('hls.js', line);
    }
    process.stdout.write(JSON.stringify(report) + '\n');
  } finally {
    clearTimeout(hardStop);
    if (browser) await browser.close().catch(() => {});
  }
}

main().catch((e) => {
  log('failed:', e && e.stack ? e.stack : String(e));
  process.exit(1);
});
