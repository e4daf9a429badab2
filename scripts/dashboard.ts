// regroute's Grafana dashboard, built with Grafana's foundation SDK and checked in as deploy/chart/dashboards/
// regroute.json (the chart's dashboard ConfigMap carries it). `npx tsx scripts/dashboard.ts` rewrites the file;
// test/unit/deploy/monitoring.test.ts fails when the file and this differ, or a query names a metric regroute does
// not export.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as common from '@grafana/grafana-foundation-sdk/common';
import {
  DashboardBuilder,
  DatasourceVariableBuilder,
  QueryVariableBuilder,
  RowBuilder,
  ThresholdsConfigBuilder,
  ThresholdsMode,
  VariableRefresh,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StatBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TimeseriesBuilder } from '@grafana/grafana-foundation-sdk/timeseries';

export const DASHBOARD_FILE = fileURLToPath(
  new URL('../deploy/chart/dashboards/regroute.json', import.meta.url),
);

// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JavaScript template
const datasource = { type: 'prometheus', uid: '${datasource}' };
/** Every query is limited to the chosen jobs: one Prometheus may scrape several regroute installs. */
const JOB = 'job=~"$job"';

const query = (expr: string, legend = '__auto') =>
  new DataqueryBuilder().expr(expr).legendFormat(legend).datasource(datasource);

const timeseries = (title: string, description: string, unit: string) =>
  new TimeseriesBuilder()
    .title(title)
    .description(description)
    .datasource(datasource)
    .unit(unit)
    .height(8)
    .span(12);

/** Green at or above `good`, red below: for 0/1 gauges and the certificate's time left. */
const goodAbove = (good: number) =>
  new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
    { value: null, color: 'red' },
    { value: good, color: 'green' },
  ]);

const stat = (title: string, description: string, unit: string, expr: string, good: number) =>
  new StatBuilder()
    .title(title)
    .description(description)
    .datasource(datasource)
    .unit(unit)
    .height(5)
    .span(6)
    .colorMode(common.BigValueColorMode.Background)
    .thresholds(goodAbove(good))
    .withTarget(query(expr));

export function buildDashboard() {
  return new DashboardBuilder('regroute')
    .uid('regroute')
    .description(
      'Admissions, routing decisions, registry health and the state of config and certificate of regroute',
    )
    .tags(['regroute', 'admission-webhook'])
    .refresh('30s')
    .time({ from: 'now-6h', to: 'now' })
    .timezone('browser')
    .withVariable(new DatasourceVariableBuilder('datasource').label('Data source').type('prometheus'))
    .withVariable(
      new QueryVariableBuilder('job')
        .label('Job')
        .datasource(datasource)
        .query('label_values(regroute_admission_requests_total, job)')
        .refresh(VariableRefresh.OnTimeRangeChanged)
        .multi(true)
        .includeAll(true),
    )
    .withRow(new RowBuilder('Now'))
    .withPanel(
      stat(
        'Config in force',
        'regroute_config_last_reload_successful of the worst pod: 0 when a pod refuses the config file as it is now',
        'bool_yes_no',
        `min(regroute_config_last_reload_successful{${JOB}})`,
        1,
      ),
    )
    .withPanel(
      stat(
        'Certificate in force',
        'regroute_tls_last_reload_successful of the worst pod: 0 when a pod refuses the certificate files as they are now',
        'bool_yes_no',
        `min(regroute_tls_last_reload_successful{${JOB}})`,
        1,
      ),
    )
    .withPanel(
      stat(
        'Certificate expires in',
        'Time left on the serving certificate that expires first; red below 7 days (RegrouteCertificateExpiringSoon)',
        's',
        `min(regroute_tls_certificate_expiry_timestamp_seconds{${JOB}}) - time()`,
        7 * 86400,
      ),
    )
    .withPanel(
      stat(
        'Registries down',
        'Registries every pod finds down (RegrouteRegistryDown)',
        'short',
        `count(max by (registry) (regroute_registry_up{${JOB}}) == 0) or vector(0)`,
        0,
      ).thresholds(
        new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
          { value: null, color: 'green' },
          { value: 1, color: 'red' },
        ]),
      ),
    )
    .withRow(new RowBuilder('Admissions'))
    .withPanel(
      timeseries('Admission reviews', 'Reviews answered per second, by result', 'reqps').withTarget(
        query(
          `sum by (result) (rate(regroute_admission_requests_total{${JOB}}[$__rate_interval]))`,
          '{{result}}',
        ),
      ),
    )
    .withPanel(
      timeseries(
        'Admission time',
        'Time from receiving a review to answering it; the admission deadline bounds it',
        's',
      )
        .withTarget(
          query(
            `histogram_quantile(0.99, sum by (le) (rate(regroute_admission_duration_seconds_bucket{${JOB}}[$__rate_interval])))`,
            'p99',
          ),
        )
        .withTarget(
          query(
            `histogram_quantile(0.5, sum by (le) (rate(regroute_admission_duration_seconds_bucket{${JOB}}[$__rate_interval])))`,
            'p50',
          ),
        ),
    )
    .withPanel(
      timeseries('Decisions', 'Routing decisions per image and second, by reason', 'ops').withTarget(
        query(
          `sum by (reason) (rate(regroute_image_decisions_total{${JOB}}[$__rate_interval]))`,
          '{{reason}}',
        ),
      ),
    )
    .withPanel(
      timeseries(
        'Rewrites',
        'Images rewritten per second, by registry left and registry chosen; source-unhealthy means an outage window',
        'ops',
      ).withTarget(
        query(
          `sum by (from, to, reason) (rate(regroute_rewrites_total{${JOB}}[$__rate_interval]))`,
          '{{from}} → {{to}} ({{reason}})',
        ),
      ),
    )
    .withRow(new RowBuilder('Registries'))
    .withPanel(
      timeseries('Registry health', '1 while the last probe of the registry succeeded, per pod', 'short')
        .min(0)
        .max(1)
        .withTarget(query(`min by (registry) (regroute_registry_up{${JOB}})`, '{{registry}}')),
    )
    .withPanel(
      timeseries('Probe time', '99th percentile of health probe duration, by registry', 's').withTarget(
        query(
          `histogram_quantile(0.99, sum by (registry, le) (rate(regroute_registry_probe_duration_seconds_bucket{${JOB}}[$__rate_interval])))`,
          '{{registry}}',
        ),
      ),
    )
    .withPanel(
      timeseries(
        'Registry requests',
        'Requests to registries per second, by registry, kind (probe: health checks; lookup: admissions) and outcome',
        'reqps',
      ).withTarget(
        query(
          `sum by (registry, kind, outcome) (rate(regroute_registry_requests_total{${JOB}}[$__rate_interval]))`,
          '{{registry}} {{kind}} {{outcome}}',
        ),
      ),
    )
    .withPanel(
      timeseries('Cache hit ratio', 'Share of tag and presence lookups answered from cache', 'percentunit')
        .min(0)
        .max(1)
        .withTarget(
          query(
            `sum by (cache) (rate(regroute_cache_lookups_total{${JOB},result="hit"}[$__rate_interval])) / sum by (cache) (rate(regroute_cache_lookups_total{${JOB}}[$__rate_interval]))`,
            '{{cache}}',
          ),
        ),
    )
    .withRow(new RowBuilder('Config, certificate and process'))
    .withPanel(
      timeseries('Reloads', 'Config and certificate changes applied and refused', 'short')
        .withTarget(
          query(`sum(increase(regroute_config_reloads_total{${JOB}}[$__rate_interval]))`, 'config applied'),
        )
        .withTarget(
          query(
            `sum(increase(regroute_config_reload_errors_total{${JOB}}[$__rate_interval]))`,
            'config refused',
          ),
        )
        .withTarget(
          query(`sum(increase(regroute_tls_reloads_total{${JOB}}[$__rate_interval]))`, 'certificate applied'),
        )
        .withTarget(
          query(
            `sum(increase(regroute_tls_reload_errors_total{${JOB}}[$__rate_interval]))`,
            'certificate refused',
          ),
        ),
    )
    .withPanel(
      timeseries('Cache entries', 'Entries held per cache, bounded by cache.maxEntries', 'short').withTarget(
        query(`max by (cache) (regroute_cache_entries{${JOB}})`, '{{cache}}'),
      ),
    )
    .withPanel(
      timeseries('Memory', 'Resident memory per pod', 'bytes').withTarget(
        query(`process_resident_memory_bytes{${JOB}}`, '{{pod}}'),
      ),
    )
    .withPanel(
      timeseries(
        'Event loop lag',
        '99th percentile of event loop lag per pod: time a review waits for the CPU',
        's',
      ).withTarget(query(`nodejs_eventloop_lag_p99_seconds{${JOB}}`, '{{pod}}')),
    )
    .build();
}

export const dashboardText = (): string => `${JSON.stringify(buildDashboard(), null, 2)}\n`;

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(DASHBOARD_FILE, dashboardText());
  // Formatted as the rest of the repository; the test compares content, not layout.
  execFileSync('npx', ['biome', 'format', '--write', DASHBOARD_FILE], { stdio: 'inherit' });
  console.log(`wrote ${DASHBOARD_FILE}`);
}
