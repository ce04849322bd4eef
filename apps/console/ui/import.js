// Importing household ledgers (admins): an XLSX or CSV file into one grid,
// first as a dry run that reports every row the server would refuse and
// why, then for real (POST /v1/admin/import/households). Rows of one
// household are grouped by 户编号; an import run twice stores nothing
// twice (`already_imported`).

import { t, label } from '../i18n.js';
import { withQuery } from '../api.js';
import {
  html,
  useState,
  useApp,
  errorText,
  unitLabel,
  unitKind,
  fmtNumber,
  PageHead,
  Figure,
} from './common.js';

const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

function contentType(file) {
  if (/\.xlsx$/i.test(file.name) || file.type === XLSX) return XLSX;
  return 'text/csv';
}

const fileKey = (file) => (file ? `${file.name}|${file.size}|${file.lastModified}` : '');

function Report({ report }) {
  const dry = report.dry_run;
  return html`<section class="card" data-testid="import-report" data-dry-run=${String(dry)}>
    <h2>${dry ? t('import_report_dry') : t('import_report_done')}</h2>
    <div class="figures">
      <${Figure} name=${t('import_rows')} value=${fmtNumber(report.rows)} testid="import-rows" />
      <${Figure}
        name=${dry ? t('import_households_dry') : t('import_households')}
        value=${fmtNumber(report.households)}
        testid="import-households"
      />
      <${Figure} name=${t('import_members')} value=${fmtNumber(report.members)} testid="import-members" />
      <${Figure} name=${t('import_already')} value=${fmtNumber(report.already_imported)} testid="import-already" />
      <${Figure}
        name=${t('import_refused')}
        value=${fmtNumber(report.refused?.length ?? 0)}
        tone=${report.refused?.length ? 'tone-red' : ''}
        testid="import-refused-count"
      />
    </div>
    <h3>${t('import_refused')}</h3>
    ${report.refused?.length
      ? html`<table class="data" data-testid="import-refused">
          <thead>
            <tr>
              <th class="num">${t('import_col_row')}</th>
              <th>${t('import_col_column')}</th>
              <th>${t('import_col_code')}</th>
              <th>${t('import_col_message')}</th>
            </tr>
          </thead>
          <tbody>
            ${report.refused.map(
              (r) => html`<tr data-row=${r.row} data-code=${r.code}>
                <td class="num">${r.row > 0 ? r.row : t('dash')}</td>
                <td>${r.column ?? t('dash')}</td>
                <td><span class="badge badge-red">${label('refuse', r.code)}</span></td>
                <td>${r.message}</td>
              </tr>`,
            )}
          </tbody>
        </table>`
      : html`<p class="muted">${t('import_refused_none')}</p>`}
    ${!dry &&
    report.imported?.length > 0 &&
    html`<h3>${t('import_imported')}</h3>
      <p class="imported" data-testid="import-imported">
        ${report.imported.map((id) => html`<a href=${`#/household/${id}`} class="chip">${id}</a> `)}
      </p>`}
  </section>`;
}

export function Import() {
  const { session, me, toast } = useApp();
  const grids = (me.area ?? []).filter((id) => unitKind(id) === 'grid');
  const [grid, setGrid] = useState('');
  const [file, setFile] = useState(null);
  const [report, setReport] = useState(null);
  const [checked, setChecked] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);

  const current = `${grid}|${fileKey(file)}`;
  const run = async (dryRun) => {
    if (!grid) return setError(new Error(t('import_pick_grid')));
    if (!file) return setError(new Error(t('import_pick_file')));
    setBusy(true);
    setError(null);
    try {
      const answer = await session.upload(
        withQuery('/v1/admin/import/households', { org_unit: grid, dry_run: dryRun ? 'true' : 'false' }),
        file,
        contentType(file),
      );
      setReport(answer);
      setChecked(dryRun ? current : null);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const template = async (format) => {
    try {
      await session.download(
        withQuery('/v1/admin/import/households/template', { format }),
        `住户台账模板.${format}`,
      );
    } catch (e) {
      toast(errorText(e), 'error');
    }
  };
  const ready = checked === current;

  return html`<div class="import">
    <${PageHead} title=${t('import_title')} sub=${t('import_intro')}>
      <span class="muted">${t('import_template')}</span>
      <button type="button" class="link-button" data-testid="template-xlsx" onClick=${() => template('xlsx')}>Excel</button>
      <button type="button" class="link-button" data-testid="template-csv" onClick=${() => template('csv')}>CSV</button>
    <//>
    <section class="card">
      <div class="form-row">
        <label class="field">
          <span>${t('import_grid')}</span>
          <select value=${grid} onChange=${(e) => setGrid(e.currentTarget.value)} data-testid="import-grid">
            <option value="">—</option>
            ${grids.map((id) => html`<option value=${id}>${unitLabel(id).trim()}</option>`)}
          </select>
        </label>
        <label class="field wide">
          <span>${t('import_file')}</span>
          <input
            type="file"
            accept=".xlsx,.csv,text/csv,${XLSX}"
            data-testid="import-file"
            onChange=${(e) => setFile(e.currentTarget.files?.[0] ?? null)}
          />
        </label>
        <button type="button" class="secondary" disabled=${busy} onClick=${() => run(true)} data-testid="import-dry-run">
          ${busy ? t('import_running') : t('import_dry_run')}
        </button>
        <button
          type="button"
          class="primary"
          disabled=${busy || !ready}
          title=${ready ? '' : t('import_first_dry')}
          onClick=${() => run(false)}
          data-testid="import-run"
        >
          ${t('import_run')}
        </button>
      </div>
      ${!ready && report?.dry_run && html`<p class="muted">${t('import_changed')}</p>`}
      ${!report && html`<p class="muted">${t('import_first_dry')}</p>`}
      ${error && html`<div class="error-box" role="alert" data-testid="import-error">${errorText(error)}</div>`}
    </section>
    ${report && html`<${Report} report=${report} />`}
  </div>`;
}
