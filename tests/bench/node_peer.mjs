// The peer: the same ONNX model served by onnxruntime-node behind Node's http module, speaking
// the KServe v2 JSON protocol (POST /v2/models/<name>/infer). One worker per core (node:cluster,
// the primary hands connections round-robin), each with its own session of one intra-op and one
// inter-op thread: how Node serves a CPU-bound model on every core. The primary prints
// "node peer ready" once every worker listens. Run by tests/Mlos.Benchmarks.Server:
//   NODE_PATH=<dir>/node_modules node node_peer.mjs <model.onnx> <name> <port> [workers]
import cluster from 'node:cluster';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const [modelPath, name, port, workersArg] = process.argv.slice(2);
const workers = Number(workersArg) || os.availableParallelism();

if (cluster.isPrimary) {
  let listening = 0;
  let stopping = false;
  cluster.on('listening', () => {
    if (++listening === workers) console.log(`node peer ready on ${port} (${workers} workers)`);
  });
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    console.error(`node peer: worker ${worker.process.pid} exited (${signal ?? code})`);
    stopping = true;
    for (const w of Object.values(cluster.workers)) w?.kill();
    process.exitCode = 1;
  });
  for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => { stopping = true; for (const w of Object.values(cluster.workers)) w?.kill(); });
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  const require = createRequire(path.resolve(process.env.NODE_PATH ?? process.cwd(), 'x.js'));
  const ort = require('onnxruntime-node');
  const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const route = `/v2/models/${name}/infer`;
  const DTYPES = { FP32: ['float32', Float32Array], INT64: ['int64', BigInt64Array], INT32: ['int32', Int32Array] };

  async function infer(body) {
    const request = JSON.parse(body);
    const feeds = {};
    for (const input of request.inputs) {
      const [type, Array] = DTYPES[input.datatype] ?? [];
      if (!type) throw new Error(`unsupported datatype ${input.datatype}`);
      feeds[input.name] = new ort.Tensor(type, Array.from(input.data.flat(Infinity)), input.shape);
    }
    const results = await session.run(feeds);
    const outputs = Object.entries(results).map(([outName, t]) => ({
      name: outName, datatype: 'FP32', shape: t.dims, data: Array.from(t.data),
    }));
    return JSON.stringify({ model_name: name, outputs });
  }

  http.createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== route) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"not found"}');
      return;
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      infer(Buffer.concat(chunks).toString('utf8')).then(
        (json) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(json); },
        (e) => { res.writeHead(400, { 'content-type': 'application/json' }); res.end(JSON.stringify({ error: String(e) })); });
    });
  }).listen(Number(port), '127.0.0.1');
}
