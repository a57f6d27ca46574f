import { spawnSync } from 'node:child_process';
import path from 'node:path';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { Namespace, ConfigMap, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { readFileSync } from 'node:fs';
import { REPO_ROOT } from '@billing/testing';

// deploy/ (README "Operating"): each overlay rendered by kustomize (kubectl's), every object
// validated against the Kubernetes or KEDA schema, then our own policies.
type Obj = { apiVersion: string; kind: string; metadata: { name: string }; spec?: any; data?: Record<string, string> };

const MODELS: Record<string, { validate(o: unknown): void }> = Object.fromEntries(
  (
    [
      ['v1/Namespace', Namespace],
      ['v1/ConfigMap', ConfigMap],
      ['v1/Service', Service],
      ['apps/v1/Deployment', Deployment],
      ['batch/v1/Job', Job],
      ['policy/v1/PodDisruptionBudget', PodDisruptionBudget],
      ['networking.k8s.io/v1/NetworkPolicy', NetworkPolicy],
      ['autoscaling/v2/HorizontalPodAutoscaler', HorizontalPodAutoscaler],
      ['keda.sh/v1alpha1/ScaledObject', ScaledObject],
      ['keda.sh/v1alpha1/TriggerAuthentication', TriggerAuthentication],
      ['monitoring.coreos.com/v1/PrometheusRule', PrometheusRule],
    ] as [string, new (o: any) => { validate(): void }][]
  ).map(([k, M]) => [k, { validate: (o: unknown) => new M(o).validate() }]),
);

/** The metric names a PromQL expression reads (histogram series by their base name). */
export function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\b([a-z_]+)(?=\{|\s*[)>]|\s*\[|\s*$)/g)]
    .map((m) => m[1]!.replace(/_bucket$/, ''))
    .filter((n) => n.includes('_') && !['by'].includes(n));
}
const EXPOSED = [
  ...readFileSync(path.join(REPO_ROOT, 'libs/service-kit/src/metrics.ts'), 'utf8').matchAll(/name: '([a-z_]+)'/g),
].map((m) => m[1]!);

/** The operators' custom resources, for which no schema package exists: the fields we rely on. */
function checkOperatorResource(o: Obj): string[] {
  if (o.apiVersion === 'rabbitmq.com/v1beta1' && o.kind === 'RabbitmqCluster')
    return Number.isInteger(o.spec?.replicas) && o.spec?.resources?.limits
      ? []
      : [`${o.metadata.name}: replicas and limits`];
  if (o.apiVersion === 'postgresql.cnpg.io/v1' && o.kind === 'Cluster') {
    const problems =
      Number.isInteger(o.spec?.instances) && o.spec?.storage?.size ? [] : [`${o.metadata.name}: instances and storage`];
    // docs/guarantees.md, Postgres failover: with replicas, one of them synchronous; never more than there are.
    const sync = o.spec?.minSyncReplicas;
    if (o.spec?.instances > 1 && !(sync >= 1))
      problems.push(`${o.metadata.name}: minSyncReplicas ≥ 1 (a failover must not lose acknowledged commits)`);
    if (sync !== undefined && !(sync <= o.spec?.maxSyncReplicas && o.spec?.maxSyncReplicas < o.spec?.instances))
      problems.push(`${o.metadata.name}: minSyncReplicas ≤ maxSyncReplicas < instances`);
    return problems;
  }
  return [`${o.apiVersion} ${o.kind} ${o.metadata.name}: no schema to validate it against`];
}

const SECRET_NAME = /SECRET|PASSWORD|TOKEN|PRIVATE|CLIENT_ID|DATABASE_URL|AMQP_URL|WEBHOOK_ID/;

/** Our policies: what every workload must have. Returns the violations, one line each. */
export function policyViolations(objects: Obj[]): string[] {
  const out: string[] = [];
  for (const o of objects) {
    if (o.kind === 'Secret')
      out.push(`${o.metadata.name}: a Secret in the manifests (secrets come from references only)`);
    if (o.kind === 'ConfigMap')
      for (const k of Object.keys(o.data ?? {}))
        if (SECRET_NAME.test(k)) out.push(`ConfigMap ${o.metadata.name}: ${k} looks like a secret`);
    if (o.kind !== 'Deployment' && o.kind !== 'Job') continue;
    const pod = o.spec.template.spec;
    const where = `${o.kind} ${o.metadata.name}`;
    if (o.kind === 'Deployment' && !(pod.terminationGracePeriodSeconds > 10))
      out.push(`${where}: terminationGracePeriodSeconds must outlast the apps' 10 s drain`);
    for (const c of pod.containers) {
      const cw = `${where}/${c.name}`;
      const image = String(c.image);
      if (!/:[\w.-]+$/.test(image.split('/').pop() ?? '') || image.endsWith(':latest'))
        out.push(`${cw}: image ${image} has no pinned tag`);
      if (o.kind === 'Deployment') {
        if (!c.readinessProbe?.httpGet?.path?.startsWith('/health/ready'))
          out.push(`${cw}: no readiness probe on /health/ready`);
        if (!c.livenessProbe?.httpGet?.path?.startsWith('/health/live'))
          out.push(`${cw}: no liveness probe on /health/live`);
      }
      for (const kind of ['requests', 'limits'])
        for (const r of ['cpu', 'memory']) if (!c.resources?.[kind]?.[r]) out.push(`${cw}: no ${kind}.${r}`);
      if (!(pod.securityContext?.runAsNonRoot || c.securityContext?.runAsNonRoot)) out.push(`${cw}: may run as root`);
      if (c.securityContext?.readOnlyRootFilesystem !== true) out.push(`${cw}: root file system not read-only`);
      if (c.securityContext?.allowPrivilegeEscalation !== false) out.push(`${cw}: privilege escalation allowed`);
      for (const e of c.env ?? [])
        if (SECRET_NAME.test(e.name) && e.value !== undefined)
          out.push(`${cw}: ${e.name} given literally, not from a Secret`);
    }
  }
  return out;
}

function render(overlay: string): Obj[] {
  const res = spawnSync('kubectl', ['kustomize', path.join(REPO_ROOT, 'deploy/overlays', overlay)], {
    encoding: 'utf8',
  });
  if (res.status !== 0) throw new Error(`kubectl kustomize ${overlay}: ${res.stderr}`);
  return parseAllDocuments(res.stdout).map((d) => d.toJSON() as Obj);
}

const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
if (!kubectl) {
  // No silent pass: .ci/run installs kubectl (Debian's kubernetes-client) when it is absent.
  t.fail('kubectl (its kustomize renders the overlays) is not installed: install it (.ci/run does)');
} else {
  for (const overlay of ['dev', 'prod']) {
    t.test(`deploy/overlays/${overlay}: every object valid against its schema, every policy kept`, async (t) => {
      const objects = render(overlay);
      const problems: string[] = [];
      for (const o of objects) {
        const model = MODELS[`${o.apiVersion}/${o.kind}`];
        if (!model) {
          problems.push(...checkOperatorResource(o));
          continue;
        }
        try {
          model.validate(o);
        } catch (err) {
          problems.push(`${o.kind} ${o.metadata.name}: ${(err as Error).message}`);
        }
      }
      t.same(problems, [], 'schema-valid');
      t.same(policyViolations(objects), [], 'policies kept');
      const byKind = (kind: string) => objects.filter((o) => o.kind === kind);
      const deployments = byKind('Deployment')
        .map((d) => d.metadata.name)
        .sort();
      t.same(deployments, [
        'admin-portal',
        'billing-api',
        'payment-worker',
        'role-worker',
        'scheduler',
        'webhook-gateway',
      ]);
      t.same(
        byKind('PodDisruptionBudget')
          .map((p) => p.metadata.name)
          .sort(),
        deployments,
        'a PodDisruptionBudget per app',
      );
      // Least privilege (docs/data.md): each app its own NetworkPolicy and its own database role's URL.
      const policies = byKind('NetworkPolicy');
      t.same(
        policies.map((p) => p.spec.podSelector.matchLabels['app.kubernetes.io/name']).sort(),
        deployments,
        'a NetworkPolicy per app, selecting its pods',
      );
      for (const p of policies)
        t.same(p.spec.policyTypes, ['Ingress', 'Egress'], `${p.metadata.name}: ingress and egress both restricted`);
      const dbKeys = byKind('Deployment').map(
        (d) =>
          d.spec.template.spec.containers[0].env.find((e: any) => e.name === 'DATABASE_URL')?.valueFrom?.secretKeyRef
            ?.key,
      );
      t.equal(new Set(dbKeys).size, 6, `six apps, six database URLs (${dbKeys.join(', ')})`);
      t.notOk(dbKeys.includes('DATABASE_URL'), 'no app on a shared database URL');
      t.same(
        byKind('HorizontalPodAutoscaler')
          .map((h) => h.spec.scaleTargetRef.name)
          .sort(),
        ['admin-portal', 'billing-api', 'webhook-gateway'],
        'the HTTP apps scale on CPU',
      );
      const scaled = byKind('ScaledObject');
      t.same(
        scaled.map((s) => s.spec.scaleTargetRef.name).sort(),
        ['payment-worker', 'role-worker'],
        'the workers through KEDA',
      );
      for (const s of scaled)
        t.match(s.spec.triggers[0], {
          type: 'rabbitmq',
          metadata: { mode: 'QueueLength', queueName: `billing.${s.spec.scaleTargetRef.name}` },
        });
      const job = byKind('Job')[0]!;
      t.match(
        job.spec.template.spec.containers[0].env.find((e: any) => e.name === 'DATABASE_URL'),
        { valueFrom: { secretKeyRef: { key: 'MIGRATE_DATABASE_URL' } } },
        'migrations run with the owner URL, the apps with the app role',
      );
      // Alert rules name only metrics the apps expose (libs/service-kit) or kube-state-metrics does.
      const rules = byKind('PrometheusRule').flatMap((r) => r.spec.groups.flatMap((g: any) => g.rules));
      t.ok(rules.length >= 6, `${rules.length} alert rules`);
      for (const r of rules)
        for (const n of metricsIn(String(r.expr)))
          t.ok(EXPOSED.includes(n) || n.startsWith('kube_'), `${r.alert}: ${n} is a metric the apps expose`);
      if (overlay === 'prod') {
        const scheduler = byKind('Deployment').find((d) => d.metadata.name === 'scheduler')!;
        t.ok(scheduler.spec.replicas >= 2, 'the scheduler on a fixed count of at least 2');
        t.equal(byKind('RabbitmqCluster')[0]!.spec.replicas, 3, 'three RabbitMQ nodes');
      }
    });
  }
}

t.test(
  'deploy/grafana: the dashboard reads only metrics the apps (or RabbitMQ, kube-state-metrics) expose',
  async (t) => {
    const dash = JSON.parse(readFileSync(path.join(REPO_ROOT, 'deploy/grafana/billing-dashboard.json'), 'utf8')) as {
      uid: string;
      panels: { title: string; targets: { expr: string }[]; gridPos: object }[];
    };
    t.equal(dash.uid, 'billing-platform');
    t.ok(dash.panels.length >= 8, `${dash.panels.length} panels`);
    for (const p of dash.panels) {
      t.ok(p.targets.length > 0 && p.gridPos, `${p.title}: a query and a place`);
      for (const { expr } of p.targets) {
        const names = metricsIn(expr);
        t.ok(names.length > 0, `${p.title}: reads a metric`);
        for (const n of names) t.ok(EXPOSED.includes(n) || /^(kube|rabbitmq)_/.test(n), `${p.title}: ${n} exists`);
      }
    }
    t.same(metricsIn('sum(rate(http_request_duration_seconds_bucket{a="b"}[5m]))'), ['http_request_duration_seconds']);
  },
);

t.test('the schema check refuses what Kubernetes would', async (t) => {
  t.throws(() =>
    MODELS['apps/v1/Deployment']!.validate({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'x' },
      spec: { replicas: 'two', selector: {}, template: {} },
    }),
  );
  t.throws(
    () =>
      MODELS['keda.sh/v1alpha1/ScaledObject']!.validate({
        apiVersion: 'keda.sh/v1alpha1',
        kind: 'ScaledObject',
        metadata: { name: 'x' },
        spec: { triggers: [] },
      }),
    'a ScaledObject without its target',
  );
  t.same(checkOperatorResource({ apiVersion: 'example.com/v1', kind: 'Thing', metadata: { name: 't' } }).length, 1);
});

t.test('the policy check finds what it looks for', async (t) => {
  const bad: Obj = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'bad' },
    spec: {
      template: {
        spec: {
          containers: [
            { name: 'c', image: 'billing-platform:latest', env: [{ name: 'JWT_SECRET', value: 'literal' }] },
          ],
        },
      },
    },
  };
  const found = policyViolations([bad, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' } }]);
  for (const what of [
    /terminationGracePeriodSeconds/,
    /no pinned tag/,
    /no readiness probe/,
    /no liveness probe/,
    /no limits.memory/,
    /may run as root/,
    /not read-only/,
    /privilege escalation/,
    /JWT_SECRET given literally/,
    /a Secret in the manifests/,
  ])
    t.ok(
      found.some((f) => what.test(f)),
      `finds ${what}`,
    );
});
