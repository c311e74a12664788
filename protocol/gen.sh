#!/bin/sh
# Regenerates protocol/expert.ts. protons 9 emits code typed for protons-runtime 7, while the
# project depends on protons-runtime 8 (Codec<D, E>, encodeMessage<D, E>, stream(reader, len, prefix));
# the runtime calls are the same, so only the type arguments are rewritten.
set -e
cd "$(dirname "$0")/.."
npx protons protocol/expert.proto
sed -i -E \
  -e 's/Codec<([A-Za-z]+)>/Codec<\1, \1>/g' \
  -e 's/message<([A-Za-z]+)>\(/message<\1, \1>(/g' \
  -e 's/encodeMessage\(obj, ([A-Za-z]+)\.codec\(\)\)/encodeMessage(obj as \1, \1.codec())/g' \
  -e 's/DType\.codec\(\)\.stream\(reader\)/DType.codec().stream(reader, undefined, `${prefix}.dtypes`)/g' \
  protocol/expert.ts
