// The peer: the same ONNX model served by onnxruntime-node behind Node's http module, speaking
// the KServe v2 JSON protocol (POST /v2/models/<name>/infer), one intra-op thread like the
// mlos_core side of the comparison. Run by tests/bench/run.sh:
//   NODE_PATH=<dir>/node_modules node node_peer.mjs <model.onnx> <name> <port>
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(path.join(process.env.NODE_PATH ?? process.cwd(), 'x.js'));
const ort = require('onnxruntime-node');
const [modelPath, name, port] = process.argv.slice(2);
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
}).listen(Number(port), '127.0.0.1', () => console.log(`node peer ready on ${port}`));
