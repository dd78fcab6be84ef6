import http from 'node:http';
import type { MetricsRegistry } from '../metrics';

/** `/metrics` (Prometheus text), `/health` (liveness) and `/ready` (joined its group, not rebalancing) for the consumer. */
export function startMetricsServer(opts: {
  port: number;
  host?: string;
  metrics: MetricsRegistry;
  isReady: () => boolean;
}): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (url.startsWith('/metrics')) {
      opts.metrics.render().then(
        (text) => {
          res.writeHead(200, { 'content-type': opts.metrics.contentType });
          res.end(text);
        },
        () => {
          res.writeHead(500);
          res.end();
        },
      );
    } else if (url.startsWith('/ready')) {
      const ready = opts.isReady();
      res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: ready ? 'ready' : 'starting' }));
    } else if (url.startsWith('/health')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"ok"}');
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => resolve(server));
  });
}
