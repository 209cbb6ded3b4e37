// Reference outputs of the OCR classifier, computed with onnxruntime-node (npm), so the ONNX
// plugin is checked against another ONNX Runtime build on the same input. Rerun with:
//
//   tests/models/fetch_ocr_model.sh build/models
//   (cd "$(mktemp -d)" && npm install onnxruntime-node@1.30.0 && \
//    NODE_PATH=$PWD/node_modules node /path/to/tests/models/ocr_reference.mjs build/models)
//
// The input is synthetic and defined by integer arithmetic, so C computes the very same floats:
//   x[i] = ((i * 7919) % 1000) / 1000 * 2 - 1   for i over shape [2, 3, 48, 192]
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(path.join(process.env.NODE_PATH ?? process.cwd(), 'x.js'));
const ort = require('onnxruntime-node');
const modelDir = process.argv[2] ?? 'build/models';
const shape = [2, 3, 48, 192];
const count = shape.reduce((a, b) => a * b);
const x = new Float32Array(count);
for (let i = 0; i < count; i++) x[i] = (((i * 7919) % 1000) / 1000) * 2 - 1;

const session = await ort.InferenceSession.create(path.join(modelDir, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'));
const result = await session.run({ x: new ort.Tensor('float32', x, shape) });
const out = result[session.outputNames[0]];
const line = ['out', session.outputNames[0], 'FP32', out.dims.length, ...out.dims, ...Array.from(out.data, v => String(v))];
const here = path.dirname(fileURLToPath(import.meta.url));
writeFileSync(path.join(here, 'onnx', 'ocr_cls.ref'),
  '# made by tests/models/ocr_reference.mjs with onnxruntime-node ' + ort.env.versions?.common + '\n' +
  '# input x FP32 [2,3,48,192]: x[i] = ((i * 7919) % 1000) / 1000 * 2 - 1\n' + line.join(' ') + '\n');
console.log(line.join(' '));
