import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { parse, stringify } from 'yaml';
import { REPO_ROOT } from '@billing/testing';

// The alert rules evaluated by Prometheus' own rule engine (`promtool test rules`): the
// PrometheusRule's groups (deploy/base/alerts.yaml, which the overlays do not patch) are written as
// a rule file beside a copy of deploy/base/alerts.test.yaml, whose input series fire each alert, or
// do not, at the times it names, with the labels and rendered annotations it expects.
const rulesFile = path.join(REPO_ROOT, 'deploy/base/alerts.yaml');
const testsFile = path.join(REPO_ROOT, 'deploy/base/alerts.test.yaml');

type Rule = { alert: string; expr: string };
type RuleTest = { alertname: string; exp_alerts?: unknown[] };
const groups = (parse(readFileSync(rulesFile, 'utf8')) as { spec: { groups: { rules: Rule[] }[] } }).spec.groups;
const alerts = groups.flatMap((g) => g.rules.map((r) => r.alert));
const cases = (parse(readFileSync(testsFile, 'utf8')) as { tests: { alert_rule_test: RuleTest[] }[] }).tests.flatMap(
  (x) => x.alert_rule_test,
);

t.test('every alert has a case that fires it and one that does not', async (t) => {
  t.ok(alerts.length >= 9, `${alerts.length} alerts`);
  for (const alert of alerts) {
    const mine = cases.filter((c) => c.alertname === alert);
    t.ok(
      mine.some((c) => (c.exp_alerts ?? []).length > 0),
      `${alert}: a series that fires it`,
    );
    t.ok(
      mine.some((c) => (c.exp_alerts ?? []).length === 0),
      `${alert}: a series that does not`,
    );
  }
  t.same(
    [...new Set(cases.map((c) => c.alertname))].filter((a) => !alerts.includes(a)),
    [],
    'no case for an alert that does not exist',
  );
});

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
if (!promtool) {
  // No silent pass: .ci/run installs promtool (Debian's prometheus package) when it is absent.
  t.fail('promtool (Prometheus rule unit tests) is not installed: install it (.ci/run does)');
} else {
  t.test('promtool test rules: each case evaluates as expected', async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'alerts-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(path.join(dir, 'rules.yaml'), stringify({ groups }));
    copyFileSync(testsFile, path.join(dir, 'alerts.test.yaml'));
    const check = spawnSync('promtool', ['check', 'rules', 'rules.yaml'], { cwd: dir, encoding: 'utf8' });
    t.equal(check.status, 0, `promtool check rules: ${check.stdout}${check.stderr}`);
    const run = spawnSync('promtool', ['test', 'rules', 'alerts.test.yaml'], { cwd: dir, encoding: 'utf8' });
    t.equal(run.status, 0, `promtool test rules:\n${run.stdout}${run.stderr}`);
    t.match(run.stdout, /SUCCESS/);
  });
}
