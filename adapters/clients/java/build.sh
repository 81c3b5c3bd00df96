#!/usr/bin/env sh
# Generate the Java classes of protos/onestop (protoc with the grpc-java plugin) and compile
# them with SettleClient.java into OUT (default adapters/clients/java/build); OUT/classpath is
# the classpath to run it with:
#   java -cp "$(cat OUT/classpath)" SettleClient HOST:PORT BILL.json
# Uses Debian's packages, no Maven download (apt-get install protobuf-compiler
# protobuf-compiler-grpc-java-plugin libgrpc-java libprotobuf-java libgoogle-common-protos-java
# libgoogle-gson-java libnetty-java libperfmark-java libgeronimo-annotation-1.3-spec-java
# default-jdk-headless): protoc and
# protobuf-java 3.21.12, grpc-java 1.41.3. google.rpc (Status, BadRequest, ErrorInfo) is
# generated from the vendored protos/third_party/google/rpc (Debian's proto-google-common-protos
# 1.16 predates ErrorInfo), ahead of that jar on the classpath.
# Exit 3, saying what is missing, when a tool or jar is not installed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
protos=$(cd "$here/../../../protos" && pwd)
out=${1:-$here/build}
J=/usr/share/java
jars="protobuf protobuf-util grpc-api grpc-context grpc-core grpc-stub grpc-protobuf grpc-protobuf-lite
  grpc-netty proto-google-common-protos gson guava perfmark-api netty-common netty-buffer netty-transport netty-codec
  netty-codec-http netty-codec-http2 netty-handler netty-resolver geronimo-annotation-1.3-spec"
missing=
for tool in protoc grpc_java_plugin javac java; do
  command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
cp=
for j in $jars; do
  if [ -f "$J/$j.jar" ]; then cp="$cp:$J/$j.jar"; else missing="$missing $j.jar"; fi
done
if [ -n "$missing" ]; then
  echo "java client: not built: missing$missing" >&2
  exit 3
fi
cp=${cp#:}
rm -rf "$out"
mkdir -p "$out/src" "$out/classes"
protoc --proto_path="$protos" --proto_path="$protos/third_party" --java_out="$out/src" --grpc-java_out="$out/src" \
  --plugin=protoc-gen-grpc-java="$(command -v grpc_java_plugin)" \
  onestop/settlement/v1/settlement.proto onestop/settlement/v1/funds.proto \
  google/rpc/status.proto google/rpc/error_details.proto
# SettleClient.java and, through -sourcepath, the generated classes it uses (SettlementService
# and its messages; ALL=1 compiles every generated class, FundsService too)
if [ "${ALL:-}" = 1 ]; then find "$out/src" -name '*.java' > "$out/sources"; else : > "$out/sources"; fi
echo "$here/SettleClient.java" >> "$out/sources"
javac -J-XX:TieredStopAtLevel=1 -nowarn -encoding UTF-8 -cp "$cp" -sourcepath "$out/src" \
  -d "$out/classes" @"$out/sources"
echo "$out/classes:$cp" > "$out/classpath"
echo "java client: built into $out ($(find "$out/classes" -name '*.class' | wc -l) classes)"
