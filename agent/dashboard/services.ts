import type { ServiceSummary } from '../../shared/wire/cluster.js';

/**
 * Pure: the swarm's services as the dashboard shows them, from the engine's
 * raw service and task lists (docker service ls + docker service ps). Only
 * names, images, replica counts, published ports and node names: a service
 * spec's environment, secrets, mounts and labels never leave this function.
 */
export function summariseServices(services: readonly any[], tasks: readonly any[], nodeNames: ReadonlyMap<string, string>): ServiceSummary[] {
  return services
    .map((s): ServiceSummary => {
      const id = String(s?.ID ?? '');
      const spec = s?.Spec ?? {};
      const mine = tasks.filter((t) => t?.ServiceID === id && t?.Status?.State === 'running');
      const replicated = spec.Mode?.Replicated;
      const image = String(spec.TaskTemplate?.ContainerSpec?.Image ?? '').replace(/@sha256:[0-9a-f]+$/, '');
      const ports = (s?.Endpoint?.Ports ?? spec.EndpointSpec?.Ports ?? []) as any[];
      return {
        name: String(spec.Name ?? id),
        image,
        mode: replicated ? 'replicated' : 'global',
        desired: replicated ? Number(replicated.Replicas ?? 0) : null,
        running: mine.length,
        ports: ports.filter((p) => p?.PublishedPort).map((p) => `${p.PublishedPort}:${p.TargetPort}/${p.Protocol ?? 'tcp'}${p.PublishMode === 'host' ? ' (host)' : ''}`),
        nodes: [...new Set(mine.map((t) => nodeNames.get(String(t.NodeID)) ?? String(t.NodeID ?? '').slice(0, 12)))].sort(),
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Pure: the summary as a manager hands it to a peer, bounded: at most `max`
 * services (64 ports and 256 node names each), and only as many as fit
 * `maxBytes` of JSON (long node lists of large clusters), the rest counted
 * in `omitted`.
 */
export function boundServices(list: readonly ServiceSummary[], max: number, maxBytes: number): { services: ServiceSummary[]; omitted: number } {
  const out: ServiceSummary[] = [];
  let bytes = 2;
  for (const full of list.slice(0, max)) {
    const s = { ...full, ports: full.ports.slice(0, 64), nodes: full.nodes.slice(0, 256) };
    const size = Buffer.byteLength(JSON.stringify(s)) + 1;
    if (bytes + size > maxBytes) break;
    bytes += size;
    out.push(s);
  }
  return { services: out, omitted: list.length - out.length };
}
