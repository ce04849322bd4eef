// Small charts drawn as inline SVG: horizontal bars with labels and
// values, and a weekly trend of bars. Readable rather than fancy; no chart
// library.

import { html } from '../vendor/preact-htm.js';
import { t } from '../i18n.js';

const WIDTH = 520;
const ROW = 26;
const LABEL_W = 138;
const VALUE_W = 92;

/** Cuts a label to about `max` characters (CJK counted double). */
function fit(text, max) {
  let width = 0;
  let out = '';
  for (const ch of String(text)) {
    width += /[\u2e80-\uffff]/.test(ch) ? 2 : 1;
    if (width > max) return `${out}…`;
    out += ch;
  }
  return out;
}

/**
 * Horizontal bars. `rows`: [{key, label, value, text?, title?}], `text`
 * overriding the value shown; `max` the value of a full bar (default the
 * largest). `onPick(row)` makes rows clickable.
 */
export function BarChart({ rows, max, tone = 'green', onPick, testid, caption, valueWidth = VALUE_W }) {
  if (!rows?.length) return html`<p class="muted chart-empty">${t('chart_empty')}</p>`;
  const top = max ?? Math.max(1, ...rows.map((r) => r.value || 0));
  const barSpace = WIDTH - LABEL_W - valueWidth;
  const height = rows.length * ROW + 4;
  return html`<figure class="chart" data-testid=${testid}>
    <svg
      class=${`bars tone-${tone}`}
      viewBox=${`0 0 ${WIDTH} ${height}`}
      width="100%"
      role="img"
      aria-label=${caption ?? ''}
      preserveAspectRatio="xMinYMin meet"
    >
      ${rows.map((row, i) => {
        const y = i * ROW + 2;
        const w = top > 0 ? Math.max(row.value > 0 ? 2 : 0, (Math.min(row.value, top) / top) * barSpace) : 0;
        return html`<g
          class=${onPick ? 'bar-row pick' : 'bar-row'}
          data-key=${row.key}
          data-value=${row.value}
          onClick=${onPick ? () => onPick(row) : undefined}
        >
          <title>${row.title ?? `${row.label}: ${row.text ?? row.value}`}</title>
          <text x=${LABEL_W - 8} y=${y + ROW / 2} class="bar-label" text-anchor="end" dominant-baseline="central">
            ${fit(row.label, 16)}
          </text>
          <rect x=${LABEL_W} y=${y + 4} width=${barSpace} height=${ROW - 8} class="bar-track" rx="3" />
          <rect x=${LABEL_W} y=${y + 4} width=${w} height=${ROW - 8} class="bar-fill" rx="3" />
          <text x=${LABEL_W + barSpace + 8} y=${y + ROW / 2} class="bar-value" dominant-baseline="central">
            ${row.text ?? row.value}
          </text>
        </g>`;
      })}
    </svg>
    ${caption && html`<figcaption class="muted">${caption}</figcaption>`}
  </figure>`;
}

/**
 * Weekly trend: for each week [{label, total, resolved}] a bar of cases
 * reported and, inside it, those of them resolved since.
 */
export function TrendChart({ weeks, testid }) {
  if (!weeks?.length) return html`<p class="muted chart-empty">${t('chart_empty')}</p>`;
  const width = WIDTH;
  const height = 190;
  const left = 30;
  const bottom = 26;
  const top = 14;
  const plotH = height - bottom - top;
  const max = Math.max(1, ...weeks.map((w) => w.total));
  const step = (width - left - 8) / weeks.length;
  const barW = Math.min(38, step * 0.6);
  const y = (v) => top + plotH - (v / max) * plotH;
  const ticks = [0, Math.ceil(max / 2), max].filter((v, i, all) => all.indexOf(v) === i);
  return html`<figure class="chart" data-testid=${testid}>
    <svg class="trend" viewBox=${`0 0 ${width} ${height}`} width="100%" role="img" aria-label=${t('trend_title')}>
      ${ticks.map(
        (v) => html`<g>
          <line x1=${left} x2=${width - 4} y1=${y(v)} y2=${y(v)} class="grid-line" />
          <text x=${left - 6} y=${y(v)} class="axis" text-anchor="end" dominant-baseline="central">${v}</text>
        </g>`,
      )}
      ${weeks.map((w, i) => {
        const x = left + i * step + (step - barW) / 2;
        return html`<g class="week" data-week=${w.from} data-total=${w.total} data-resolved=${w.resolved}>
          <title>${`${t('trend_week_of', { date: w.label })}: ${t('trend_reported')} ${w.total}, ${t('trend_resolved')} ${w.resolved}`}</title>
          <rect x=${x} y=${y(w.total)} width=${barW} height=${y(0) - y(w.total)} class="trend-total" rx="2" />
          <rect x=${x + 4} y=${y(w.resolved)} width=${barW - 8} height=${y(0) - y(w.resolved)} class="trend-resolved" rx="2" />
          ${w.total > 0 &&
          html`<text x=${x + barW / 2} y=${y(w.total) - 4} class="trend-value" text-anchor="middle">${w.total}</text>`}
          <text x=${x + barW / 2} y=${height - 8} class="axis" text-anchor="middle">${w.label}</text>
        </g>`;
      })}
    </svg>
    <figcaption class="legend">
      <span><i class="swatch trend-total"></i>${t('trend_reported')}</span>
      <span><i class="swatch trend-resolved"></i>${t('trend_resolved')}</span>
    </figcaption>
  </figure>`;
}
